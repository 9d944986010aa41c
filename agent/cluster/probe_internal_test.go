package cluster

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/internal/testpki"
)

// A connection to the Raft port that closes before it sends a byte is a
// port check (Consul's or Nomad's tcp check, a load balancer's), which
// without TLS is dropped without a word: with TLS it is no failed
// handshake worth a warning either, whether it ends with a FIN or a RST.
// A connection that sends something other than a TLS handshake, or a
// peer of another CA, is still refused with a warning.
func TestPortCheckIsNoFailedHandshake(t *testing.T) {
	ca, other := testpki.NewCA(t, "foreshape"), testpki.NewCA(t, "intruder")
	tlsOf := func(ca *testpki.CA, name string) *TLS {
		return &TLS{Certificate: ca.Issue(t, name).TLSCertificate(t), CAs: ca.Pool()}
	}
	// run serves a mux, makes the connections of conns to it, then a
	// cluster call's connection, whose handshake completes only once the
	// mux has accepted every connection before it, and returns the mux's
	// log once every handler has returned.
	run := func(conns func(addr string)) string {
		t.Helper()
		logs := &syncbuf.Buffer{}
		m, err := listen("127.0.0.1:0", "", tlsOf(ca, "server"), hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug}))
		if err != nil {
			t.Fatal(err)
		}
		m.serve()
		addr := m.ln.Addr().String()
		conns(addr)
		c, err := dial(addr, connRPC, tlsOf(ca, "client"), 5*time.Second)
		if err != nil {
			t.Fatalf("a cluster call's connection: %v", err)
		}
		c.Close()
		if err := m.close(); err != nil {
			t.Fatal(err)
		}
		m.wait()
		return logs.String()
	}

	// Port checks: connect and close (FIN), connect and reset (RST).
	out := run(func(addr string) {
		for _, reset := range []bool{false, true} {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			if reset {
				if err := c.(*net.TCPConn).SetLinger(0); err != nil {
					t.Fatal(err)
				}
			}
			c.Close()
		}
	})
	if strings.Contains(out, "[WARN]") || strings.Count(out, "[DEBUG] a connection closed before the TLS handshake") != 2 {
		t.Errorf("want the two port checks at DEBUG and no warning:\n%s", out)
	}

	// Not TLS, and another CA's peer: warnings.
	out = run(func(addr string) {
		plain, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := plain.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		// The mux answers with an alert and closes.
		_ = plain.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.Copy(io.Discard, plain)
		plain.Close()
		if _, err := dial(addr, connRPC, tlsOf(other, "intruder"), 5*time.Second); err == nil {
			t.Error("a peer of another CA was accepted")
		}
	})
	if n := strings.Count(out, "[WARN]  refused a connection: TLS handshake failed"); n != 2 {
		t.Errorf("%d warnings of a failed handshake, want 2 (not TLS; another CA):\n%s", n, out)
	}
}
