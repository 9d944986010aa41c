package docblock

import "testing"

func TestHCL(t *testing.T) {
	doc := "1. Step:\n\n   <!-- x: y -->\n   ```hcl\n   a = 1\n     b = 2\n   ```\n\n<!-- other -->\n```sh\nnot hcl\n```\n"
	got, err := HCL(doc, "x: y")
	if err != nil || got != "a = 1\n  b = 2\n" {
		t.Errorf("HCL(x: y) = %q, %v; want the block less the fence's indentation", got, err)
	}
	if _, err := HCL(doc, "other"); err == nil {
		t.Error("a marked block that is not hcl was returned")
	}
	if _, err := HCL(doc, "missing"); err == nil {
		t.Error("a marker the doc lacks gave no error")
	}
}
