package policies

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"

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
		if file != nil {
			nameByPlace(file, diags)
		}
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
	nameByPlace(file, diags)
	if diags.HasErrors() {
		return nil, diags
	}
	return out, diags
}

// nameByPlace names the setting of each "Unsupported argument",
// "Unsupported block type" and "Attribute redefined" diagnostic in file by
// its place, as every other diagnostic names its field: "Unsupported
// argument headroom.cpus", "Unsupported argument
// scale.web.target.nomad-job.jobb", "Attribute redefined reserve.max_cpu". HCL's own words
// name only the attribute, and its snippet only the shaping block, so a
// typo in one of several blocks that take the same attribute (min in
// scale, lead_time in reserve or migrate) did not say which. Outside any
// shaping block, what is not a typo of one also says what a policy file
// holds.
func nameByPlace(file *hcl.File, diags hcl.Diagnostics) {
	body, ok := file.Body.(*hclsyntax.Body)
	if !ok {
		return
	}
	for _, d := range diags {
		if d.Subject == nil || d.Subject.Filename != body.SrcRange.Filename ||
			(d.Summary != "Unsupported argument" && d.Summary != "Unsupported block type" && d.Summary != "Attribute redefined") {
			continue
		}
		start, end := d.Subject.Start.Byte, d.Subject.End.Byte
		if start < 0 || end > len(file.Bytes) || start >= end {
			continue
		}
		path := append(blockPath(body, start), string(file.Bytes[start:end]))
		d.Summary += " " + strings.Join(path, ".")
		if len(path) == 1 && !insideShaping(body, start) && !strings.Contains(d.Detail, "Did you mean") {
			d.Detail += ` A policy file holds shaping "NAME" { ... } blocks and nothing else; the agent's own settings belong in its configuration, not in policies.dir.`
		}
	}
}

// blockPath is where the byte at offset sits in body, as a setting's name
// begins: the blocks around it, with their labels, inside the shaping
// block ("scale", "web", "target", "nomad-job").
func blockPath(body *hclsyntax.Body, offset int) []string {
	var path []string
	for top := true; ; top = false {
		var in *hclsyntax.Block
		for _, b := range body.Blocks {
			if b.OpenBraceRange.End.Byte <= offset && offset < b.CloseBraceRange.Start.Byte {
				in = b
				break
			}
		}
		if in == nil {
			return path
		}
		if !top || in.Type != "shaping" {
			path = append(append(path, in.Type), in.Labels...)
		}
		body = in.Body
	}
}

// insideShaping reports whether offset is inside one of body's blocks.
func insideShaping(body *hclsyntax.Body, offset int) bool {
	for _, b := range body.Blocks {
		if b.OpenBraceRange.End.Byte <= offset && offset < b.CloseBraceRange.Start.Byte {
			return true
		}
	}
	return false
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
			// The file is the subject, as for an error inside it: a
			// reload refused for it says the policies are invalid, not
			// the configuration.
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cannot read policy file",
				Detail:   fmt.Sprintf("%s: %s.", path, unwrapPathError(err)),
				Subject:  &hcl.Range{Filename: path, Start: hcl.InitialPos, End: hcl.InitialPos},
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
// NoPolicyFiles is the summary of LoadDir's warning of a directory that
// holds no *.hcl file, whose detail a caller may say more precisely (what
// an agent then runs).
const NoPolicyFiles = "No policy files"

// Subdirectories, hidden names and other files are ignored (HCLFiles),
// with a warning for a subdirectory that holds *.hcl files.
func (l *Loader) LoadDir(dir string) ([]*Policy, hcl.Diagnostics) {
	paths, err := HCLFiles(dir)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read policy directory",
			Detail:   fmt.Sprintf("%s: %s.", dir, unwrapPathError(err)),
		}}
	}
	skipped := skippedSubdirs(dir)
	if len(paths) == 0 {
		return nil, append(skipped, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  NoPolicyFiles,
			Detail:   fmt.Sprintf("%s holds no *.hcl file, so no locality is shaped.", dir),
		})
	}
	pols, diags := l.LoadFiles(paths...)
	return pols, append(skipped, diags...)
}

// skippedSubdirs warns of each subdirectory of dir that holds *.hcl files
// (policies sorted into folders by team), which LoadDir does not read.
// Hidden ones are left out: a Kubernetes ConfigMap volume keeps its files
// in "..2026_01_05_12_00_00.1" and links to them from dir.
func skippedSubdirs(dir string) hcl.Diagnostics {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var diags hcl.Diagnostics
	for _, e := range entries {
		sub := filepath.Join(dir, e.Name())
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
			continue
		}
		if files, err := HCLFiles(sub); err == nil && len(files) > 0 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Policies in a subdirectory",
				Detail: fmt.Sprintf("%s holds *.hcl files (%s), which are not read: only the files directly in %s are. Move them into it, or remove them.",
					sub, filepath.Base(files[0]), dir),
			})
		}
	}
	return diags
}

// LoadPaths loads each path, a file or a directory of *.hcl files. A
// file whose name the agent skips in policies.dir (not *.hcl, or hidden)
// is loaded with a warning that says so.
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
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && !hcldir.Named(filepath.Base(p)) {
				d = append(d, &hcl.Diagnostic{
					Severity: hcl.DiagWarning,
					Summary:  "Not read from policies.dir",
					Detail: fmt.Sprintf("The agent reads only the files of policies.dir whose names end in .hcl and do not start with '.', so it skips %s there; it is checked here as named.",
						filepath.Base(p)),
					Subject: &hcl.Range{Filename: p, Start: hcl.InitialPos, End: hcl.InitialPos},
				})
			}
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
