package cluster

import (
	"errors"
	"strings"
	"testing"
)

// TestPeersFileTextAfterTheList: a file whose list is whole but is followed
// by more text is refused where that text begins, saying what it is, not
// as a file that ends before its list does (which the last character of
// the file once read as, when nothing followed it, not even a newline).
func TestPeersFileTextAfterTheList(t *testing.T) {
	const self, addr = "SELF", "127.0.0.1:7576"
	list := `[{"id": "SELF", "address": "127.0.0.1:7576"}]`
	for _, tc := range []struct{ name, file, at string }{
		{"a letter", list + " x", "x"},
		{"a letter and a newline", list + " x\n", "x"},
		{"a bracket too many", list + "]", "]"},
		{"a second list", list + "\n[]", "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readPeers("peers.json", []byte(tc.file), self, addr)
			var pe *PeersFileError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v; want a PeersFileError", err)
			}
			if strings.Contains(pe.Reason, "ends before the list does") || !strings.Contains(pe.Reason, "after top-level value") {
				t.Errorf("reason %q; want the text after the list named", pe.Reason)
			}
			lines := strings.Split(tc.file, "\n")
			if pe.Line < 1 || pe.Line > len(lines) || pe.Column < 1 || !strings.HasPrefix(lines[pe.Line-1][pe.Column-1:], tc.at) {
				t.Errorf("at %d,%d; want where %q begins", pe.Line, pe.Column, tc.at)
			}
		})
	}
	// A file cut short still says so, at its end.
	_, err := readPeers("peers.json", []byte(list[:len(list)-1]), self, addr)
	var pe *PeersFileError
	if !errors.As(err, &pe) || !strings.Contains(pe.Reason, "the file ends before the list does") {
		t.Errorf("a file cut short: %v; want it said to end before the list does", err)
	}
}
