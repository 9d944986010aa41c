// Package hcldir lists the HCL files of a configuration or policy
// directory the way the agent reads them.
package hcldir

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// List returns the *.hcl files directly in dir, sorted by name. It leaves
// out hidden names (an editor's lock file, .#web.hcl, is a dangling
// symbolic link, and its backups and swap files start with a dot too),
// subdirectories, and whatever is not a regular file once symbolic links
// are followed: reading a FIFO or a device would block the agent or never
// end. A link whose target is missing is listed, so that reading it says
// so.
func List(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if !Named(name) {
			continue
		}
		path := filepath.Join(dir, name)
		if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
			continue
		}
		out = append(out, path)
	}
	sort.Strings(out)
	return out, nil
}

// Named reports whether a file of this name is one List may return: it
// ends in ".hcl" and is not hidden.
func Named(name string) bool {
	return !strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".hcl")
}
