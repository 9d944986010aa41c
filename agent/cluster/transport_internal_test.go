package cluster

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/internal/testpki"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Raft answers heartbeats on the transport's connection goroutine, so a
// node may close its stores only once every handler has let go of its
// connection: the mux's close must not be the end of it.
func TestMuxWaitsForRaftHandlers(t *testing.T) {
	m, err := listen("127.0.0.1:0", "", nil, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	m.serve()
	layer := raftLayer{m}
	peer, err := layer.Dial(raft.ServerAddress(m.ln.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	accepted, err := layer.Accept()
	if err != nil {
		t.Fatal(err)
	}

	// A handler in the middle of a read: close must wake it.
	readErr := make(chan error, 1)
	go func() {
		_, err := accepted.Read(make([]byte, 1))
		readErr <- err
	}()
	if err := m.close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatalf("read after close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("close left the handler's read blocked")
	}

	waited := make(chan struct{})
	go func() { m.raftWait(); close(waited) }()
	select {
	case <-waited:
		t.Fatal("raftWait returned while the handler still held its connection")
	case <-time.After(100 * time.Millisecond):
	}
	accepted.Close() // the handler returns
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("raftWait did not return after the handler let go")
	}
	m.wait()
}

// A server admits a Raft hello unless it names another server at this
// address, or another cluster than this server's when both have an ID.
func TestAdmitRaft(t *testing.T) {
	var logs syncbuf.Buffer
	n := memNode(t, &gateFSM{}, &logs, nil)
	if err := n.admitRaft(raftHello{ClusterID: "c2", From: "x", To: "n1"}); err != nil {
		t.Errorf("a hello naming this server, before this server has a cluster ID: %v", err)
	}
	if err := n.setClusterID("c1", "test"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		h    raftHello
		want string // "" admits
	}{
		{raftHello{}, ""},
		{raftHello{ClusterID: "c1", From: "x", To: "n1"}, ""},
		{raftHello{From: "x", To: "n1"}, ""},
		{raftHello{ClusterID: "c1", From: "x"}, ""},
		{raftHello{ClusterID: "c1", From: "x", To: "n9"},
			"server n1 answers at this address, not server n9, which server x's configuration has there"},
		{raftHello{ClusterID: "c2", From: "x", To: "n1"}, "server x is of cluster c2, server n1 of cluster c1"},
		{raftHello{ClusterID: "c2", From: "x"}, "server x is of cluster c2, server n1 of cluster c1"},
	} {
		err := n.admitRaft(tt.h)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v; want it admitted", tt.h, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: %v; want it refused: %s", tt.h, err, tt.want)
		}
	}
}

// helloPeer admits what admit says, writes hello, and passes a server
// that closed a hello unanswered unless older says otherwise.
type helloPeer struct {
	hello raftHello
	admit func(raftHello) error
	seen  chan raftHello
	older func(address string) error
	// superseded is what Superseded says.
	superseded error
}

func (p *helloPeer) raftHello(string) raftHello { return p.hello }
func (p *helloPeer) admitRaft(h raftHello) error {
	p.seen <- h
	return p.admit(h)
}
func (p *helloPeer) heardRecovered(Recovery, string) {}
func (p *helloPeer) Superseded() error               { return p.superseded }

func (p *helloPeer) checkOlder(address string, _ raftHello, _ time.Duration) error {
	if p.older == nil {
		return nil
	}
	return p.older(address)
}

// The hello on the wire, with and without TLS: what the dialer's peer
// writes reaches the acceptor's; a refusal reaches the dialer with its
// reason (logged once at WARN however often the dialer retries); a server
// of a release before the hello, which closes it unanswered, is dialed
// without one, and the dialer remembers that for a while.
func TestRaftHelloOnTheWire(t *testing.T) {
	ca := testpki.NewCA(t, "foreshape")
	for _, withTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tls"}[withTLS], func(t *testing.T) {
			var tl *TLS
			if withTLS {
				tl = &TLS{Certificate: ca.Issue(t, "s").TLSCertificate(t), CAs: ca.Pool()}
			}
			var logs syncbuf.Buffer
			mux := func(p raftPeer, older bool) (*mux, string) {
				m, err := listen("127.0.0.1:0", "", tl, hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug}))
				if err != nil {
					t.Fatal(err)
				}
				m.peer, m.older = p, older
				m.serve()
				t.Cleanup(func() { m.close(); m.raftWait(); m.wait() })
				// The transport takes what the mux accepts.
				go func() {
					for {
						c, err := raftLayer{m}.Accept()
						if err != nil {
							return
						}
						c.Close()
					}
				}()
				return m, m.ln.Addr().String()
			}
			refuse := errors.New("not for me")
			acceptor := &helloPeer{admit: func(h raftHello) error {
				if h.To != "me" {
					return refuse
				}
				return nil
			}, seen: make(chan raftHello, 10)}
			_, addr := mux(acceptor, false)
			dialer := &helloPeer{hello: raftHello{ClusterID: "c1", From: "d", To: "me"}}
			d, _ := mux(dialer, false)

			c, err := d.dialRaft(addr, 5*time.Second)
			if err != nil {
				t.Fatalf("an admitted hello: %v", err)
			}
			c.Close()
			if got := <-acceptor.seen; got != dialer.hello {
				t.Errorf("the acceptor read %+v; want %+v", got, dialer.hello)
			}

			dialer.hello.To = "someone else"
			for range 3 {
				_, err = d.dialRaft(addr, 5*time.Second)
				var refused *RaftRefusedError
				if !errors.As(err, &refused) || refused.Address != addr || refused.Reason != "not for me" {
					t.Fatalf("a refused hello: %v; want a RaftRefusedError from %s saying why", err, addr)
				}
				<-acceptor.seen
			}
			if n := strings.Count(logs.String(), "[WARN]  refused a Raft connection: it is meant for another cluster or server"); n != 1 {
				t.Errorf("%d WARN lines about three refusals of one reason; want 1:\n%s", n, logs.String())
			}
			if d.olderPeer(addr) {
				t.Error("a refusal marked the acceptor as a server of an earlier release")
			}

			// A server that closes the hello unanswered and does not pass
			// checkOlder (a proxy without its backend, a server of another
			// cluster): no connection, and the hello stays on.
			_, old := mux(&helloPeer{admit: func(raftHello) error { return refuse }, seen: make(chan raftHello, 10)}, true)
			dialer.older = func(string) error { return &olderMismatch{errors.New("not the one")} }
			_, err = d.dialRaft(old, 5*time.Second)
			var refused *RaftRefusedError
			if !errors.As(err, &refused) || refused.Reason != "not the one" || d.olderPeer(old) {
				t.Fatalf("a server closing the hello that checkOlder refuses: %v, marked %v; want a refusal, not marked", err, d.olderPeer(old))
			}
			dialer.older = func(string) error { return errors.New("no answer") }
			if _, err = d.dialRaft(old, 5*time.Second); err == nil || !strings.Contains(err.Error(), "without answering, and no answer") || d.olderPeer(old) {
				t.Fatalf("a server closing the hello that does not answer checkOlder: %v, marked %v; want an error, not marked", err, d.olderPeer(old))
			}
			dialer.older = nil
			c, err = d.dialRaft(old, 5*time.Second)
			if err != nil {
				t.Fatalf("a server of an earlier release: %v; want the connection without a hello", err)
			}
			c.Close()
			if !d.olderPeer(old) || !strings.Contains(logs.String(), "dialing it without the hello for a while") {
				t.Errorf("the dialer did not remember or log the earlier release's server:\n%s", logs.String())
			}
		})
	}
}

// A refusal is logged at WARN once an hour per reason, its key cut to
// refusalKeyLen, and at most maxRefusals reasons are kept.
func TestRefusalLogBounded(t *testing.T) {
	var l refusalLog
	now := time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)
	long := strings.Repeat("x", 4*refusalKeyLen)
	if !l.first(long, now) || l.first(long+"y", now.Add(time.Minute)) || l.first(long, now.Add(59*time.Minute)) {
		t.Error("one reason (cut to its key) logged other than once in its hour")
	}
	if !l.first(long, now.Add(refusalRewarn)) {
		t.Error("a reason not logged again after an hour")
	}
	for i := range 3 * maxRefusals {
		l.first(fmt.Sprintf("reason %d", i), now)
	}
	if len(l.logged) > maxRefusals {
		t.Errorf("%d reasons kept, want at most %d", len(l.logged), maxRefusals)
	}
	for k := range l.logged {
		if len(k) > refusalKeyLen {
			t.Errorf("a key of %d bytes", len(k))
		}
	}
}

// A superseded server refuses every hello, and has said at ERROR once what
// it is: its refusals of its old peers' hellos stay at DEBUG, where a
// server of a running cluster logs the first of a reason at WARN.
func TestASupersededServerRefusesHellosAtDebug(t *testing.T) {
	var logs syncbuf.Buffer
	m, err := listen("127.0.0.1:0", "", nil, hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug}))
	if err != nil {
		t.Fatal(err)
	}
	acceptor := &helloPeer{admit: func(raftHello) error { return errors.New("this server's cluster was recovered as another") },
		seen: make(chan raftHello, 10), superseded: errors.New("superseded")}
	m.peer = acceptor
	m.serve()
	t.Cleanup(func() { m.close(); m.raftWait(); m.wait() })
	d, err := listen("127.0.0.1:0", "", nil, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	d.peer = &helloPeer{hello: raftHello{ClusterID: "old", From: "s1", To: "s0"}}
	d.serve()
	t.Cleanup(func() { d.close(); d.raftWait(); d.wait() })

	var refused *RaftRefusedError
	if _, err := d.dialRaft(m.ln.Addr().String(), 5*time.Second); !errors.As(err, &refused) {
		t.Fatalf("a hello to a superseded server: %v; want it refused", err)
	}
	<-acceptor.seen
	if !strings.Contains(logs.String(), "[DEBUG] refused a Raft connection") || strings.Contains(logs.String(), "[WARN]") {
		t.Errorf("the superseded server logged:\n%s\nwant its refusal at DEBUG and nothing at WARN", logs.String())
	}
}
