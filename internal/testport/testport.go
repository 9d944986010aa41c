//go:build unix

// Package testport hands tests TCP ports on loopback for servers they start
// themselves or in a child process. Asking the kernel for port 0 and closing
// the listener before the server binds races: the port comes from the
// ephemeral range, where any outgoing connection of any process (an HTTP
// client in a test package running beside this one) may take it as its
// source port, and another package may pick it too. A port from Get comes
// from below the ephemeral range, so no outgoing connection takes it, and is
// held by an advisory lock under the temporary directory until the test
// ends, so no other test process (nor another Get in this one) picks it.
// The lock files, empty, stay in $TMPDIR/foreshape-testport: removing one
// would let two processes lock different files of the same port.
package testport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// low is the lowest port Get hands out: above the ports of well-known
// services a developer machine may run (Nomad's 4646-4648, Consul's
// 8300-8600, Prometheus's 9090).
const low = 20000

// Get returns a TCP port on 127.0.0.1 that was free when it was picked and
// that no other caller of Get on this machine is handed until t ends.
func Get(t testing.TB) int {
	t.Helper()
	port, release, err := get(os.TempDir(), low, ephemeralLow())
	if err != nil {
		t.Fatalf("testport: %v", err)
	}
	t.Cleanup(release)
	return port
}

// get picks a port in [from, to) whose lock file under tmp it can lock and
// which it can listen on, trying each once from a random one on, and
// returns it with the function that gives the lock back.
func get(tmp string, from, to int) (int, func(), error) {
	if to-from < 100 {
		return 0, nil, fmt.Errorf("port range [%d, %d) is too small", from, to)
	}
	dir := filepath.Join(tmp, "foreshape-testport")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, nil, err
	}
	var last error
	n := to - from
	first := rand.IntN(n)
	for i := range n {
		port := from + (first+i)%n
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			return 0, nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if !errors.Is(err, syscall.EWOULDBLOCK) {
				return 0, nil, fmt.Errorf("lock %s: %w", f.Name(), err)
			}
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			last = err
			f.Close()
			continue
		}
		l.Close()
		// Closing the file gives the lock back.
		return port, func() { f.Close() }, nil
	}
	return 0, nil, fmt.Errorf("no free port in [%d, %d) (last: %v)", from, to, last)
}

// ephemeralLow is where the kernel's range of ephemeral ports begins: Linux
// says in /proc; elsewhere the IANA range's start.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > low+1000 {
				return n
			}
		}
	}
	return 49152
}
