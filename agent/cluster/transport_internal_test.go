package cluster

import (
	"errors"
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
			"this address is server n1's, not server n9's, which server x's configuration names here"},
		{raftHello{ClusterID: "c2", From: "x", To: "n1"}, "server x belongs to cluster c2, this server to cluster c1"},
		{raftHello{ClusterID: "c2", From: "x"}, "server x belongs to cluster c2"},
	} {
		err := n.admitRaft(tt.h)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v; want it admitted", tt.h, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: %v; want it refused: %s", tt.h, err, tt.want)
		}
	}
	if err := n.admitRaft(raftHello{ClusterID: "c2"}); !errors.Is(err, ErrOtherCluster) {
		t.Errorf("another cluster's hello: %v; want ErrOtherCluster", err)
	}
}

// helloPeer admits what admit says and writes hello.
type helloPeer struct {
	hello raftHello
	admit func(raftHello) error
	seen  chan raftHello
}

func (p *helloPeer) raftHello(string) raftHello { return p.hello }
func (p *helloPeer) admitRaft(h raftHello) error {
	p.seen <- h
	return p.admit(h)
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

			_, old := mux(&helloPeer{admit: func(raftHello) error { return refuse }, seen: make(chan raftHello, 10)}, true)
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
