package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// The Raft port carries two kinds of connection, told apart by the first
// byte the dialer writes (after the TLS handshake, when TLS is on): Raft's
// own RPCs, and foreshape's cluster RPCs (server info, join, client agent
// reports, forwarded calls).
const (
	connRaft byte = 'R'
	connRPC  byte = 'C'
)

// handshakeTimeout bounds the TLS handshake and the kind byte of an
// accepted connection.
const handshakeTimeout = 10 * time.Second

// TLS is mutual TLS on the Raft port: every server and client agent
// presents Certificate, and accepts a peer only when the peer's certificate
// chains to CAs. Host names are not checked (servers dial each other by IP
// address): the CA is the trust boundary, so give foreshape a CA of its own.
type TLS struct {
	Certificate tls.Certificate
	CAs         *x509.CertPool
}

// ServerConfig is the listening side: it requires a client certificate
// signed by the CAs.
func (t *TLS) ServerConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{t.Certificate},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    t.CAs,
		MinVersion:   tls.VersionTLS12,
	}
}

// ClientConfig is the dialling side: it presents the certificate and
// verifies the server's chain against the CAs, without a host name.
func (t *TLS) ClientConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{t.Certificate},
		MinVersion:   tls.VersionTLS12,
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
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots: t.CAs, Intermediates: inter,
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
		raftConns: map[*raftConn]struct{}{}}
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
	_ = c.SetDeadline(time.Time{})
	switch kind[0] {
	case connRaft:
		rc, ok := m.trackRaft(c)
		if !ok {
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

// wait waits for the connection handlers after close.
func (m *mux) wait() { m.wg.Wait() }

// dial opens a connection of kind to address, with TLS when t is set.
func dial(address string, kind byte, t *TLS, timeout time.Duration) (net.Conn, error) {
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
	_ = c.SetDeadline(time.Time{})
	return c, nil
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
	return dial(string(address), connRaft, l.m.tls, timeout)
}
