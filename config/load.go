package config

import (
	"fmt"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/foreshape/foreshape/internal/hcldir"
)

// Loader reads configuration files and remembers their sources, so that
// callers can print diagnostics with snippets (hcl.NewDiagnosticTextWriter
// takes Files()). A Loader is not safe for concurrent use.
type Loader struct {
	parser *hclparse.Parser
}

// NewLoader returns an empty Loader.
func NewLoader() *Loader { return &Loader{parser: hclparse.NewParser()} }

// Files returns every file the Loader has parsed, keyed by filename.
func (l *Loader) Files() map[string]*hcl.File { return l.parser.Files() }

// Load reads path, a file or a directory of *.hcl files (alphabetical),
// and merges each file's settings over a copy of base; later files
// override earlier ones. Each file is validated on its own; the rules that
// span fields are left to Validate, which runs after ApplyEnv. base is not
// modified.
func (l *Loader) Load(base *Config, path string) (*Config, hcl.Diagnostics) {
	cfg := base.Clone()
	paths, err := configFiles(path)
	if err != nil {
		return cfg, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read configuration",
			Detail:   err.Error(),
		}}
	}
	var diags hcl.Diagnostics
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cannot read configuration file",
				Detail:   fmt.Sprintf("%s: %s.", p, pathErr(err)),
			})
			continue
		}
		diags = append(diags, l.Parse(cfg, p, src)...)
	}
	return cfg, diags
}

// Parse decodes one file's source and merges its valid settings into cfg.
func (l *Loader) Parse(cfg *Config, filename string, src []byte) hcl.Diagnostics {
	file, diags := l.parser.ParseHCL(src, filename)
	if diags.HasErrors() {
		return diags
	}
	return append(diags, decodeFile(file, cfg)...)
}

// Load loads path over the production defaults and validates the result.
// It does not read the environment; agents call ApplyEnv between loading
// and validating.
func Load(path string) (*Config, hcl.Diagnostics) {
	cfg, diags := NewLoader().Load(Default(), path)
	if diags.HasErrors() {
		return cfg, diags
	}
	return cfg, append(diags, cfg.Validate()...)
}

// configFiles resolves path to the files to read, in order.
func configFiles(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", path, pathErr(err))
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	out, err := hcldir.List(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", path, pathErr(err))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: the directory holds no *.hcl file", path)
	}
	return out, nil
}

func pathErr(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}
