package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// headingAnchors are the anchors GitHub gives the headings of a Markdown
// file: each heading lower-cased, without what is not a letter, digit,
// space, '-' or '_', its spaces made '-', and "-1", "-2", … after a
// repeated one. Headings inside code blocks do not count.
func headingAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile(`^#+\s+(.*)$`)
	out, seen := map[string]bool{}, map[string]int{}
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			in = !in
			continue
		}
		m := heading.FindStringSubmatch(line)
		if in || m == nil {
			continue
		}
		var s strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(m[1])) {
			switch {
			case r == ' ':
				s.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				s.WriteRune(r)
			}
		}
		a := s.String()
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// TestDocumentedLinksResolve: every relative link of the README and the
// docs ([docs/proof.md](docs/proof.md),
// [clustering.md](clustering.md#losing-the-leader)) names a file the
// repository has and, with a #fragment into a Markdown file, one of that
// file's headings, so that a moved file or a renamed section cannot leave
// a reader at nothing.
func TestDocumentedLinksResolve(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	scheme := regexp.MustCompile(`^[a-z]+:`) // http:, https:, mailto:
	checked := 0
	for _, f := range docFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if scheme.MatchString(target) {
				continue
			}
			checked++
			path, frag, _ := strings.Cut(target, "#")
			file := f
			if path != "" {
				file = filepath.Join(filepath.Dir(f), path)
			}
			if _, err := os.Stat(file); err != nil {
				t.Errorf("%s links to %s, which does not exist", f, target)
				continue
			}
			if frag != "" && strings.HasSuffix(file, ".md") && !headingAnchors(t, file)[frag] {
				t.Errorf("%s links to %s, but %s has no heading whose anchor is #%s", f, target, file, frag)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked %d links: the scan is broken", checked)
	}
}
