package cluster

import (
	"testing"
	"time"

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
