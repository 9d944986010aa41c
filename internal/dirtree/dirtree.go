// Package dirtree lists a directory's files with their sizes and digests,
// for tests that check a command left a directory as it found it.
package dirtree

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Of lists dir's files, each with its size and SHA-256, one per line ("" when
// dir is not there, or is not a directory): two lists are equal when nothing
// in dir was made, removed or changed.
func Of(t testing.TB, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		b.WriteString(path + "\n")
		if d.Type().IsRegular() {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "  %d bytes, sha256 %x\n", len(data), sha256.Sum256(data))
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		t.Fatal(err)
	}
	return b.String()
}
