//go:build unix

package testport

import (
	"net"
	"strconv"
	"testing"
)

func TestGetHandsOutEachPortOnce(t *testing.T) {
	tmp := t.TempDir()
	// A range of 100 ports, 100 asked: each must come out once, locked.
	seen := map[int]bool{}
	var releases []func()
	for range 60 {
		port, release, err := get(tmp, 30000, 30100)
		if err != nil {
			t.Fatal(err)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
		releases = append(releases, release)
	}
	for _, r := range releases {
		r()
	}
	// Released, a port can be handed out again.
	for range 60 {
		_, release, err := get(tmp, 30000, 30100)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
	}
}

func TestGetSkipsAPortInUse(t *testing.T) {
	tmp := t.TempDir()
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	// Listen on all of 31000-31099 but one.
	free := -1
	for p := 31000; p < 31100; p++ {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue // taken already: not ours to hand out either
		}
		if free < 0 {
			free = p
			l.Close()
			continue
		}
		held = append(held, l)
	}
	if free < 0 {
		t.Skip("no port in 31000-31099 free on this machine")
	}
	port, release, err := get(tmp, 31000, 31100)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if port != free {
		t.Fatalf("got port %d, want the only free one, %d", port, free)
	}
}

func TestGetIsBelowTheEphemeralRange(t *testing.T) {
	port := Get(t)
	if port < low || port >= ephemeralLow() {
		t.Fatalf("port %d outside [%d, %d)", port, low, ephemeralLow())
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("port %d: %v", port, err)
	}
	l.Close()
}
