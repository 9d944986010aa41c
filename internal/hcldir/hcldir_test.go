//go:build unix

package hcldir

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// TestListReadsWhatTheAgentShould: regular *.hcl files and links to them
// are listed in order; hidden names, other suffixes, directories and FIFOs
// are not; a dangling link is, so reading it says so.
func TestListReadsWhatTheAgentShould(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"b.hcl", "a.hcl", ".web.hcl.swp", "notes.txt", ".hidden.hcl"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("# x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Mkdir(filepath.Join(dir, "sub.hcl"), 0o755))
	must(t, os.Symlink("a.hcl", filepath.Join(dir, "c.hcl")))
	must(t, os.Symlink("root@host.1234:1700000000", filepath.Join(dir, ".#b.hcl"))) // an editor's lock
	must(t, os.Symlink("gone.hcl", filepath.Join(dir, "d.hcl")))
	must(t, syscall.Mkfifo(filepath.Join(dir, "pipe.hcl"), 0o644))
	got, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, filepath.Base(p))
	}
	if want := []string{"a.hcl", "b.hcl", "c.hcl", "d.hcl"}; !slices.Equal(names, want) {
		t.Errorf("List = %v; want %v", names, want)
	}
	if _, err := List(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("List of a missing directory: %v; want not exist", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
