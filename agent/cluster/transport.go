package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// The Raft port carries three kinds of connection, told apart by the first
// byte the dialer writes (after the TLS handshake, when TLS is on): Raft's
// own RPCs opened with a hello (connRaftHello), Raft's own RPCs without one
// (connRaft: what servers of releases before the hello dial), and
// foreshape's cluster RPCs (server info, join, client agent reports,
// forwarded calls).
const (
	connRaft      byte = 'R'
	connRaftHello byte = 'H'
	connRPC       byte = 'C'
)

// A Raft connection's hello says which cluster the dialer belongs to and
// which server it means to reach, so that a server refuses Raft traffic
// meant for another: raft itself checks membership only for votes, and a
// leader replicating to an address whose server is gone (its port taken by
// a server of another cluster, or by a new server that has not joined yet)
// would otherwise overwrite that server's log with its own cluster's.
//
// The dialer writes connRaftHello, then the hello as JSON behind a two-byte
// big-endian length; the acceptor answers helloAccepted, or helloRefused
// and the reason behind a two-byte length, and closes. A refusal of a
// cluster the acceptor's was recovered from carries, behind the reason, a
// second frame: that Recovery as JSON (recovered.go). A dialer of a
// release before it reads the reason and closes; an acceptor of one closes
// after the reason, which a dialer reads as no Recovery. A server of a
// release before the hello closes the connection at the unknown kind
// without a word. The dialer then asks the server there who it is (its
// cluster RPC OpInfo, which earlier releases answer) and applies the
// hello's check itself: only a server that passes is dialed without a
// hello (connRaft), each time for olderPeerRetry before the hello is
// tried again, so servers of both releases replicate to each other during
// a rolling upgrade. A connection closed unanswered is also what a server
// stopping, a port between two owners or a proxy without its backend
// gives, hence the check. A server accepts connRaft too, for the same
// reason: the hello protects a server from a dialer of this release or
// later.
type raftHello struct {
	// ClusterID is the dialer's cluster ID ("" while it has none).
	ClusterID string `json:"cluster_id,omitempty"`
	// From is the dialer's server ID.
	From string `json:"from,omitempty"`
	// To is the server ID the dialer's configuration has at the address
	// it dials ("" when it has none there).
	To string `json:"to,omitempty"`
}

const (
	helloAccepted byte = '+'
	helloRefused  byte = '-'
	// maxHello bounds a hello and a refusal's reason.
	maxHello = 4096
	// olderPeerRetry is how long an address that closed a hello without
	// an answer is dialed without one.
	olderPeerRetry = time.Minute
)

// raftPeer is the server behind a mux: it writes the hellos of the Raft
// connections it dials and admits those it accepts.
type raftPeer interface {
	raftHello(address string) raftHello
	admitRaft(h raftHello) error
	// checkOlder refuses the server at address, which closed a hello
	// unanswered, as admitRaft would refuse h there.
	checkOlder(address string, h raftHello, timeout time.Duration) error
	// heardRecovered takes the Recovery a server at address refused a
	// hello with (recovered.go).
	heardRecovered(r Recovery, address string)
	// Superseded is non-nil once this server's cluster was recovered as
	// another: it then dials no Raft connection and accepts none.
	Superseded() error
}

// RaftRefusedError is a server's refusal of a Raft connection whose hello
// names another cluster or another server than its own.
type RaftRefusedError struct {
	Address, Reason string
}

func (e *RaftRefusedError) Error() string {
	return fmt.Sprintf("cluster: the server at %s refused the Raft connection: %s", e.Address, e.Reason)
}

// handshakeTimeout bounds the TLS handshake and the kind byte of an
// accepted connection.
const handshakeTimeout = 10 * time.Second

// TLS is mutual TLS on the Raft port: every server and client agent
// presents Certificate, and accepts a peer only when the peer's certificate
// chains to CAs. Host names are not checked (servers dial each other by IP
// address): the CA is the trust boundary, so give foreshape a CA of its own.
// Rotate replaces both for every handshake after it.
type TLS struct {
	Certificate tls.Certificate
	CAs         *x509.CertPool
	// rotated is what the last Rotate gave; nil until one.
	rotated atomic.Pointer[tlsMaterial]
}

type tlsMaterial struct {
	cert tls.Certificate
	cas  *x509.CertPool
}

// Rotate makes every handshake after it, on each side, present cert and
// trust cas (nil: the system's roots, as a TLS without CAs): a
// certificate rotated before it expires (Vault's PKI, a template
// re-rendered on SIGHUP) is used without a restart. Connections already
// made keep what they were made with.
func (t *TLS) Rotate(cert tls.Certificate, cas *x509.CertPool) {
	t.rotated.Store(&tlsMaterial{cert: cert, cas: cas})
}

// current is the certificate and CAs a handshake uses now.
func (t *TLS) current() (*tls.Certificate, *x509.CertPool) {
	if m := t.rotated.Load(); m != nil {
		return &m.cert, m.cas
	}
	return &t.Certificate, t.CAs
}

// ServerConfig is the listening side: it requires a client certificate
// signed by the CAs.
func (t *TLS) ServerConfig() *tls.Config {
	return t.ListenerConfig(tls.RequireAndVerifyClientCert)
}

// ListenerConfig is a listening side presenting the current certificate
// and verifying client certificates against the current CAs as auth says
// (the HTTP API asks for one only with verify_incoming, and requires none:
// Consul's health check has none).
func (t *TLS) ListenerConfig(auth tls.ClientAuthType) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, cas := t.current()
			return &tls.Config{Certificates: []tls.Certificate{*cert}, ClientAuth: auth, ClientCAs: cas,
				MinVersion: tls.VersionTLS12}, nil
		},
	}
}

// ClientConfig is the dialling side: it presents the certificate and
// verifies the server's chain against the CAs, without a host name.
func (t *TLS) ClientConfig() *tls.Config {
	return &tls.Config{
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := t.current()
			return cert, nil
		},
		MinVersion: tls.VersionTLS12,
		// Verification happens in VerifyConnection: the chain, not the
		// host name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return t.verifyChain(cs.PeerCertificates)
		},
	}
}

func (t *TLS) verifyChain(certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return errors.New("cluster: tls: the peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, cas := t.current()
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots: cas, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("cluster: tls: the peer's certificate: %w", err)
	}
	return nil
}

// mux owns the Raft port's listener: it accepts connections, completes the
// TLS handshake, reads the kind byte and hands Raft connections to the
// transport and cluster RPC connections to rpc.
type mux struct {
	ln     net.Listener
	adv    net.Addr
	tls    *TLS // nil: plain TCP
	log    hclog.Logger
	raftCh chan net.Conn
	rpc    func(net.Conn)
	// peer writes and admits Raft hellos; nil: none are written, and
	// every hello is admitted.
	peer raftPeer
	// older is a test's stand-in for a server of a release before the
	// hello: it dials without one and closes a hello unanswered.
	older bool
	// olderRecovered is a test's stand-in for a server of a release
	// before the Recovery behind a refusal: it neither sends nor reads one.
	olderRecovered bool

	// olderPeers are the addresses that closed a hello unanswered and
	// passed checkOlder, with when.
	olderMu    sync.Mutex
	olderPeers map[string]time.Time
	refusals   refusalLog

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	// Raft connections handed to the transport. Raft answers heartbeats
	// on the transport's connection goroutine, not its own, so one can
	// still be writing the term to the stable store after Shutdown has
	// returned: close waits for every handler to let go of its connection
	// (raftWait) before the stores may be closed.
	raftMu    sync.Mutex
	raftConns map[*raftConn]struct{}
	raftWG    sync.WaitGroup
	closed    bool
}

// raftConn is an accepted Raft connection; its Close is the transport's
// handler letting go of it.
type raftConn struct {
	net.Conn
	m    *mux
	once sync.Once
}

func (c *raftConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.m.raftMu.Lock()
		delete(c.m.raftConns, c)
		c.m.raftMu.Unlock()
		c.m.raftWG.Done()
	})
	return err
}

// trackRaft wraps c for the transport; ok is false once the mux is
// closed (c is closed then).
func (m *mux) trackRaft(c net.Conn) (*raftConn, bool) {
	m.raftMu.Lock()
	defer m.raftMu.Unlock()
	if m.closed {
		c.Close()
		return nil, false
	}
	rc := &raftConn{Conn: c, m: m}
	m.raftConns[rc] = struct{}{}
	m.raftWG.Add(1)
	return rc, true
}

// raftWait waits, after close, until the transport's handlers have let go
// of every Raft connection (close has closed them, so their reads fail).
func (m *mux) raftWait() { m.raftWG.Wait() }

// listen opens the Raft port. adv, when not empty, is the address peers
// dial; otherwise the listener's own address, which must then be
// dialable (not 0.0.0.0).
func listen(bind, adv string, t *TLS, log hclog.Logger) (*mux, error) {
	var advAddr net.Addr
	if adv != "" {
		a, err := net.ResolveTCPAddr("tcp", adv)
		if err != nil {
			return nil, fmt.Errorf("cluster: advertise address %q: %w", adv, err)
		}
		if a.IP == nil || a.IP.IsUnspecified() {
			return nil, fmt.Errorf("cluster: advertise address %q is not an address peers can dial", adv)
		}
		advAddr = a
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen on %s: %w", bind, err)
	}
	if advAddr == nil {
		a := ln.Addr().(*net.TCPAddr)
		if a.IP.IsUnspecified() {
			ln.Close()
			return nil, fmt.Errorf("cluster: bind address %s is not an address peers can dial; set an advertise address", bind)
		}
		advAddr = a
	}
	m := &mux{ln: ln, adv: advAddr, tls: t, log: log, raftCh: make(chan net.Conn), done: make(chan struct{}),
		raftConns: map[*raftConn]struct{}{}, olderPeers: map[string]time.Time{}}
	return m, nil
}

// serve accepts connections until close.
func (m *mux) serve() {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			c, err := m.ln.Accept()
			if err != nil {
				select {
				case <-m.done:
					return
				default:
				}
				m.log.Warn("accept failed", logKeyError, err)
				time.Sleep(50 * time.Millisecond)
				continue
			}
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.route(c)
			}()
		}
	}()
}

func (m *mux) route(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	if m.tls != nil {
		counted := &countingConn{Conn: c}
		tc := tls.Server(counted, m.tls.ServerConfig())
		if err := tc.Handshake(); err != nil {
			if counted.n == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
				// Closed before it sent a byte: a port check (Consul's
				// or Nomad's tcp check, a load balancer's), not a peer
				// that failed TLS. Without TLS such a connection is
				// dropped without a word too.
				m.log.Debug("a connection closed before the TLS handshake", "remote_addr", c.RemoteAddr().String(), logKeyError, err)
			} else {
				m.log.Warn("refused a connection: TLS handshake failed", "remote_addr", c.RemoteAddr().String(), logKeyError, err)
			}
			c.Close()
			return
		}
		c = tc
	}
	var kind [1]byte
	if _, err := c.Read(kind[:]); err != nil {
		c.Close()
		return
	}
	if kind[0] == connRaftHello && !m.older {
		if !m.admit(c) {
			c.Close()
			return
		}
		kind[0] = connRaft
	}
	_ = c.SetDeadline(time.Time{})
	switch kind[0] {
	case connRaft:
		rc, ok := m.trackRaft(c)
		if !ok {
			return
		}
		if m.peer != nil && m.peer.Superseded() != nil {
			// A superseded server takes part in nothing (recovered.go);
			// checked once tracked, so that a connection admitted while
			// the server was being superseded is closed here or by
			// closeRaftConns.
			rc.Close()
			return
		}
		select {
		case m.raftCh <- rc:
		case <-m.done:
			rc.Close()
		}
	case connRPC:
		if m.rpc == nil {
			c.Close()
			return
		}
		m.rpc(c)
	default:
		m.log.Warn("refused a connection of unknown kind", "remote_addr", c.RemoteAddr().String(), "kind", kind[0])
		c.Close()
	}
}

// admit reads the hello of an accepted Raft connection and answers it; it
// is false when the connection is to be closed (refused, or the hello
// unreadable).
func (m *mux) admit(c net.Conn) bool {
	var h raftHello
	b, err := readFrame(c)
	if err == nil {
		err = json.Unmarshal(b, &h)
	}
	if err != nil {
		m.log.Warn("refused a Raft connection: its hello could not be read", "remote_addr", c.RemoteAddr().String(), logKeyError, err)
		return false
	}
	if m.peer != nil {
		if err := m.peer.admitRaft(h); err != nil {
			// At WARN once an hour per reason (refusalLog): the dialer
			// retries, backing off to about ten seconds. A superseded
			// server refuses every hello, and has said once at ERROR what
			// it is and what to do: its refusals stay at DEBUG.
			level := hclog.Debug
			if m.peer.Superseded() == nil && m.refusals.first(err.Error(), time.Now()) {
				level = hclog.Warn
			}
			m.log.Log(level, "refused a Raft connection: it is meant for another cluster or server",
				"remote_addr", c.RemoteAddr().String(), "from", h.From, "its_cluster_id", h.ClusterID, "meant_for", h.To, logKeyError, err)
			reply := append([]byte{helloRefused}, frame([]byte(err.Error()))...)
			// A cluster this server's was recovered from is told which
			// (recovered.go), in a second frame that releases before it
			// do not read.
			var rr *recoveredRefusal
			if errors.As(err, &rr) && !m.olderRecovered {
				if b, jerr := json.Marshal(rr.rec); jerr == nil {
					reply = append(reply, frame(b)...)
				}
			}
			_, _ = c.Write(reply)
			return false
		}
	}
	_, err = c.Write([]byte{helloAccepted})
	return err == nil
}

// refusalLog remembers the refusals logged at WARN, so that a dialer
// retrying is logged once an hour per reason. Reasons are cut to
// refusalKeyLen (a hello's fields are the dialer's to choose) and at most
// maxRefusals are kept.
type refusalLog struct {
	mu     sync.Mutex
	logged map[string]time.Time
}

const (
	refusalKeyLen = 256
	maxRefusals   = 256
	refusalRewarn = time.Hour
)

// first says whether reason is to be logged at WARN now.
func (l *refusalLog) first(reason string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(reason) > refusalKeyLen {
		reason = reason[:refusalKeyLen]
	}
	if at, ok := l.logged[reason]; ok && now.Sub(at) < refusalRewarn {
		return false
	}
	if l.logged == nil || len(l.logged) >= maxRefusals {
		l.logged = map[string]time.Time{}
	}
	l.logged[reason] = now
	return true
}

// frame is b behind its two-byte big-endian length, cut to maxHello.
func frame(b []byte) []byte {
	if len(b) > maxHello {
		b = b[:maxHello]
	}
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

// readFrame reads what frame wrote.
func readFrame(r io.Reader) ([]byte, error) {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint16(n[:])
	if size > maxHello {
		return nil, fmt.Errorf("a frame of %d bytes, over %d", size, maxHello)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// countingConn counts the bytes read from an accepted connection during
// its TLS handshake.
type countingConn struct {
	net.Conn
	n int
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n += n
	return n, err
}

func (m *mux) close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.done)
		err = m.ln.Close()
		m.raftMu.Lock()
		m.closed = true
		for c := range m.raftConns {
			c.Conn.Close()
		}
		m.raftMu.Unlock()
	})
	return err
}

// closeRaftConns closes every accepted Raft connection, so that its
// dialer must dial again and pass admit.
func (m *mux) closeRaftConns() {
	m.raftMu.Lock()
	defer m.raftMu.Unlock()
	for c := range m.raftConns {
		c.Conn.Close()
	}
}

// wait waits for the connection handlers after close.
func (m *mux) wait() { m.wg.Wait() }

// dial opens a connection of kind to address, with TLS when t is set.
func dial(address string, kind byte, t *TLS, timeout time.Duration) (net.Conn, error) {
	return dialGreet(address, kind, t, timeout, nil)
}

// errNoHelloAnswer: the acceptor closed a hello without answering, as a
// server of a release before the hello does.
var errNoHelloAnswer = errors.New("the server closed the connection at the hello without answering")

// dialGreet is dial running greet, when not nil, on the connection after
// the kind byte, within the timeout.
func dialGreet(address string, kind byte, t *TLS, timeout time.Duration, greet func(net.Conn) error) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial("tcp", address)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	if t != nil {
		tc := tls.Client(c, t.ClientConfig())
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("tls handshake with %s: %w", address, err)
		}
		c = tc
	}
	if _, err := c.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, err
	}
	if greet != nil {
		if err := greet(c); err != nil {
			c.Close()
			return nil, err
		}
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// dialRaft opens a Raft connection to address: with a hello, or, where
// the server closed one unanswered and checkOlder passed it within
// olderPeerRetry (a server of a release before the hello), without.
func (m *mux) dialRaft(address string, timeout time.Duration) (net.Conn, error) {
	if m.peer == nil || m.older {
		return dial(address, connRaft, m.tls, timeout)
	}
	if err := m.peer.Superseded(); err != nil {
		return nil, fmt.Errorf("cluster: no Raft connection to %s: %w", address, err)
	}
	c, err := m.dialRaftHello(address, timeout)
	if err != nil {
		return nil, err
	}
	return &fencedConn{Conn: c, peer: m.peer}, nil
}

// fencedConn is a Raft connection this server dialed: once the server is
// superseded (recovered.go) it fails every read and write, so that raft
// drops it, a connection in use when the server was superseded included,
// which raft would otherwise put back in its pool and use on.
type fencedConn struct {
	net.Conn
	peer raftPeer
}

func (c *fencedConn) Read(b []byte) (int, error) {
	if err := c.peer.Superseded(); err != nil {
		c.Conn.Close()
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *fencedConn) Write(b []byte) (int, error) {
	if err := c.peer.Superseded(); err != nil {
		c.Conn.Close()
		return 0, err
	}
	return c.Conn.Write(b)
}

// dialRaftHello is dialRaft's dial: with the hello, or without it to a
// server of a release before it.
func (m *mux) dialRaftHello(address string, timeout time.Duration) (net.Conn, error) {
	hello := m.peer.raftHello(address)
	if m.olderPeer(address) {
		return m.dialOlder(address, hello, timeout, false)
	}
	h, err := json.Marshal(hello)
	if err != nil {
		return nil, err
	}
	c, err := dialGreet(address, connRaftHello, m.tls, timeout, func(c net.Conn) error {
		if _, err := c.Write(frame(h)); err != nil {
			return noAnswer(err)
		}
		var answer [1]byte
		if _, err := io.ReadFull(c, answer[:]); err != nil {
			return noAnswer(err)
		}
		switch answer[0] {
		case helloAccepted:
			return nil
		case helloRefused:
			reason, err := readFrame(c)
			if err != nil {
				reason = []byte("(its reason could not be read: " + err.Error() + ")")
			} else if !m.olderRecovered {
				// The Recovery of this server's cluster, from a server
				// of the cluster it was recovered as; a release before
				// it closes after the reason.
				if b, err := readFrame(c); err == nil {
					var r Recovery
					if json.Unmarshal(b, &r) == nil {
						m.peer.heardRecovered(r, address)
					}
				}
			}
			return &RaftRefusedError{Address: address, Reason: string(reason)}
		}
		return fmt.Errorf("cluster: the server at %s answered the Raft hello with %q", address, answer[0])
	})
	if errors.Is(err, errNoHelloAnswer) {
		return m.dialOlder(address, hello, timeout, true)
	}
	return c, err
}

// dialOlder dials address without a hello once checkOlder passes the
// server there; found: the server just closed a hello unanswered.
func (m *mux) dialOlder(address string, h raftHello, timeout time.Duration, found bool) (net.Conn, error) {
	if err := m.peer.checkOlder(address, h, timeout); err != nil {
		m.forgetOlder(address)
		if found {
			err = fmt.Errorf("%w, and %w", errNoHelloAnswer, err)
		}
		var mismatch *olderMismatch
		if errors.As(err, &mismatch) {
			return nil, &RaftRefusedError{Address: address, Reason: mismatch.Error()}
		}
		return nil, fmt.Errorf("cluster: Raft connection to %s: %w", address, err)
	}
	if found {
		m.log.Info("the server closed the Raft hello unanswered and answers as the server this one means to reach, as servers of releases before the hello do: dialing it without the hello for a while",
			logKeyAddress, address, logKeyNodeID, h.To, "retry_hello_after", olderPeerRetry)
		m.olderMu.Lock()
		m.olderPeers[address] = time.Now()
		m.olderMu.Unlock()
	}
	return dial(address, connRaft, m.tls, timeout)
}

// olderMismatch is checkOlder's refusal of the server that answered.
type olderMismatch struct{ error }

func (e *olderMismatch) Unwrap() error { return e.error }

// forgetOlder drops address from olderPeers.
func (m *mux) forgetOlder(address string) {
	m.olderMu.Lock()
	defer m.olderMu.Unlock()
	delete(m.olderPeers, address)
}

// noAnswer maps the end of a connection before the hello's answer to
// errNoHelloAnswer; other errors (a timeout) stay as they are.
func noAnswer(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("%w: %w", errNoHelloAnswer, err)
	}
	return err
}

// olderPeer says whether address closed a hello unanswered within
// olderPeerRetry.
func (m *mux) olderPeer(address string) bool {
	m.olderMu.Lock()
	defer m.olderMu.Unlock()
	at, ok := m.olderPeers[address]
	if ok && time.Since(at) >= olderPeerRetry {
		delete(m.olderPeers, address)
		return false
	}
	return ok
}

// raftLayer is the raft.StreamLayer over the mux.
type raftLayer struct{ m *mux }

var _ raft.StreamLayer = raftLayer{}

func (l raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftCh:
		return c, nil
	case <-l.m.done:
		return nil, net.ErrClosed
	}
}

func (l raftLayer) Close() error   { return l.m.close() }
func (l raftLayer) Addr() net.Addr { return l.m.adv }

func (l raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.m.dialRaft(string(address), timeout)
}
