// Package docblock finds the fenced code blocks the docs mark for their
// tests ("<!-- MARKER -->" on the line before the fence), so that a test
// checks the very text an operator copies. It is for tests only: it must
// never be imported by non-test code.
package docblock

import (
	"fmt"
	"regexp"
	"strings"
)

// HCL is the fenced hcl block that follows "<!-- marker -->" in doc, its
// lines less the indentation of the fence (a list item's), ending in a
// newline. It is an error when doc has no such block.
func HCL(doc, marker string) (string, error) {
	re := regexp.MustCompile("<!-- " + regexp.QuoteMeta(marker) + " -->\n( *)```hcl\n((?s:.*?))\n *```")
	m := re.FindStringSubmatch(doc)
	if m == nil {
		return "", fmt.Errorf("no hcl block after <!-- %s -->", marker)
	}
	var lines []string
	for _, l := range strings.Split(m[2], "\n") {
		lines = append(lines, strings.TrimPrefix(l, m[1]))
	}
	return strings.Join(lines, "\n") + "\n", nil
}
