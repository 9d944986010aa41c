package policies

import (
	"fmt"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/foreshape/foreshape/internal/hcldir"
)

// Loader parses policy files and remembers their sources, so that callers
// can print diagnostics with source snippets (hcl.NewDiagnosticTextWriter
// takes Files()). A Loader is not safe for concurrent use.
type Loader struct {
	parser *hclparse.Parser
	// seen maps a policy name to where it was first defined, across every
	// file this Loader has read.
	seen map[string]hcl.Range
	// read holds the files this Loader has read: a file named twice (a
	// glob beside its directory, a relative and an absolute path, a link)
	// is read once, not refused as defining its own policies again.
	read []os.FileInfo
}

// NewLoader returns an empty Loader.
func NewLoader() *Loader {
	return &Loader{parser: hclparse.NewParser(), seen: map[string]hcl.Range{}}
}

// Files returns every file the Loader has parsed, keyed by filename.
func (l *Loader) Files() map[string]*hcl.File { return l.parser.Files() }

// Parse parses and validates the policies in src, read from filename.
// Policies are returned only when the file has no errors; warnings may
// accompany them. A policy name already seen by this Loader is an error
// naming both places.
func (l *Loader) Parse(filename string, src []byte) ([]*Policy, hcl.Diagnostics) {
	file, diags := l.parser.ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, diags
	}
	blocks, d := decodeFile(file)
	diags = append(diags, d...)
	var out []*Policy
	for _, b := range blocks {
		if prev, dup := l.seen[b.Name]; dup {
			diags = append(diags, duplicate("policy", b.Name, b.NameRange, prev))
			continue
		}
		l.seen[b.Name] = b.NameRange
		p, d := translate(b)
		diags = append(diags, d...)
		out = append(out, p)
	}
	if len(blocks) == 0 && !diags.HasErrors() {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "No shaping block",
			Detail:   fmt.Sprintf("%s defines no shaping \"NAME\" { ... } block, so it shapes nothing.", filename),
			Subject:  file.Body.MissingItemRange().Ptr(),
		})
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return out, diags
}

// LoadFiles reads, parses and validates each file in order. It returns the
// policies of every file that had no errors, and all diagnostics; callers
// must treat diags.HasErrors() as "do not use this set".
func (l *Loader) LoadFiles(paths ...string) ([]*Policy, hcl.Diagnostics) {
	var (
		out   []*Policy
		diags hcl.Diagnostics
	)
	for _, path := range paths {
		fi, err := os.Stat(path)
		if err == nil && l.readBefore(fi) {
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cannot read policy file",
				Detail:   fmt.Sprintf("%s: %s.", path, unwrapPathError(err)),
			})
			continue
		}
		if fi != nil {
			l.read = append(l.read, fi)
		}
		ps, d := l.Parse(path, src)
		diags = append(diags, d...)
		out = append(out, ps...)
	}
	return out, diags
}

// readBefore reports whether fi is a file this Loader has read.
func (l *Loader) readBefore(fi os.FileInfo) bool {
	for _, r := range l.read {
		if os.SameFile(r, fi) {
			return true
		}
	}
	return false
}

// LoadDir loads every *.hcl file directly in dir, in alphabetical order.
// Subdirectories, hidden names and other files are ignored (HCLFiles).
func (l *Loader) LoadDir(dir string) ([]*Policy, hcl.Diagnostics) {
	paths, err := HCLFiles(dir)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read policy directory",
			Detail:   fmt.Sprintf("%s: %s.", dir, unwrapPathError(err)),
		}}
	}
	if len(paths) == 0 {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagWarning,
			Summary:  "No policy files",
			Detail:   fmt.Sprintf("%s holds no *.hcl file, so no locality is shaped.", dir),
		}}
	}
	return l.LoadFiles(paths...)
}

// LoadPaths loads each path, a file or a directory of *.hcl files.
func (l *Loader) LoadPaths(paths ...string) ([]*Policy, hcl.Diagnostics) {
	var (
		out   []*Policy
		diags hcl.Diagnostics
	)
	for _, p := range paths {
		var (
			ps []*Policy
			d  hcl.Diagnostics
		)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			ps, d = l.LoadDir(p)
		} else {
			ps, d = l.LoadFiles(p)
		}
		out = append(out, ps...)
		diags = append(diags, d...)
	}
	return out, diags
}

// Parse parses and validates the policies in one file's source.
func Parse(filename string, src []byte) ([]*Policy, hcl.Diagnostics) {
	return NewLoader().Parse(filename, src)
}

// LoadFiles loads policy files; duplicate names across them are errors.
func LoadFiles(paths ...string) ([]*Policy, hcl.Diagnostics) {
	return NewLoader().LoadFiles(paths...)
}

// LoadDir loads every *.hcl file in dir, alphabetically.
func LoadDir(dir string) ([]*Policy, hcl.Diagnostics) {
	return NewLoader().LoadDir(dir)
}

// HCLFiles lists the *.hcl files directly in dir, sorted by name, as the
// agent reads policies.dir: hidden names (editors' lock and swap files),
// subdirectories and what is not a regular file are left out.
func HCLFiles(dir string) ([]string, error) { return hcldir.List(dir) }

func unwrapPathError(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}
