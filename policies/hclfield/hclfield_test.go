package hclfield

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

func expr(t *testing.T, src string) hcl.Expression {
	t.Helper()
	e, diags := hclsyntax.ParseExpression([]byte(src), "x.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parse %q: %s", src, diags.Error())
	}
	return e
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "0s", want: 0},
		{in: "90s", want: 90 * time.Second},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "1d", want: 24 * time.Hour},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "1w", want: 7 * 24 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "3µs", want: 3 * time.Microsecond},
		{in: "", wantErr: "empty"},
		{in: "1", wantErr: "missing unit"},
		{in: "1y", wantErr: `unknown unit "y"`},
		{in: "-1h", wantErr: `"-1h" is negative`},
		{in: "+1h", wantErr: "expected a number"},
		{in: "h", wantErr: "expected a number"},
		{in: "1 h", wantErr: `unknown unit " h"`},
		{in: "1..2h", wantErr: "bad number"},
		{in: "300000w", wantErr: "too long"},
		{in: "9223372036854775807ns", wantErr: "too long"}, // rounds to 2^63 as a float
		{in: "106751d23h47m16.854775807s", wantErr: "too long"},
		{in: "106751d23h47m16s", want: time.Duration(106751*24+23)*time.Hour + 47*time.Minute + 16*time.Second},
	} {
		got, err := ParseDuration(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseDuration(%q) error = %v, want one containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                   "0s",
		90 * time.Second:    "1m30s",
		time.Hour:           "1h",
		90 * time.Minute:    "1h30m",
		24 * time.Hour:      "1d",
		36 * time.Hour:      "1d12h",
		14 * 24 * time.Hour: "14d",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if d > 0 {
			back, err := ParseDuration(FormatDuration(d))
			if err != nil || back != d {
				t.Errorf("round trip of %v = %v, %v", d, back, err)
			}
		}
	}
}

func TestDecoders(t *testing.T) {
	for _, tc := range []struct {
		name    string
		src     string
		decode  func(hcl.Expression) (any, bool, hcl.Diagnostics)
		want    any
		wantSet bool
		wantErr string
	}{
		{"string", `"a"`, wrap(String), "a", true, ""},
		{"string null", `null`, wrap(String), "", false, ""},
		{"string from number", `3`, wrap(String), "", false, "A string is required, got a number"},
		{"non-empty", `"  "`, wrap(NonEmptyString), "", false, "must not be empty"},
		{"bool", `true`, wrap(Bool), true, true, ""},
		{"bool from string", `"true"`, wrap(Bool), false, false, "A bool"},
		{"number", `1.5`, wrap(Number), 1.5, true, ""},
		{"number from list", `[1]`, wrap(Number), 0.0, false, "got a list"},
		{"int", `42`, wrap(Int), 42, true, ""},
		{"int fraction", `4.2`, wrap(Int), 0, false, "whole number"},
		{"int huge", `1e30`, wrap(Int), 0, false, "out of range"},
		{"duration", `"2h"`, wrap(Duration), 2 * time.Hour, true, ""},
		{"duration number", `7200`, wrap(Duration), time.Duration(0), false, "duration string"},
		{"enum", `"b"`, func(e hcl.Expression) (any, bool, hcl.Diagnostics) { return Enum(e, "f", []string{"a", "b"}) }, "b", true, ""},
		{"enum bad", `"c"`, func(e hcl.Expression) (any, bool, hcl.Diagnostics) { return Enum(e, "f", []string{"a", "b"}) }, "", false, `"c" is not one of "a", "b"`},
		{"list element", `["a", 1]`, func(e hcl.Expression) (any, bool, hcl.Diagnostics) {
			v, ok, d := StringList(e, "f")
			return v, ok, d
		}, []string(nil), false, "Element 1 must be a string"},
		{"map value", `{ a = [1] }`, func(e hcl.Expression) (any, bool, hcl.Diagnostics) {
			v, ok, d := StringMap(e, "f")
			return v, ok, d
		}, map[string]string(nil), false, `key "a" must be a string`},
		{"url scheme", `"ftp://x"`, func(e hcl.Expression) (any, bool, hcl.Diagnostics) {
			_, ok, d := URL(e, "f")
			return nil, ok, d
		}, nil, false, "http or https"},
		{"variable", `var.x`, wrap(String), "", false, "Variables not allowed"},
		// HCL keeps the later of two values of one key, without a word.
		{"map key twice", `{ a = "x", b = "y", a = "z" }`, func(e hcl.Expression) (any, bool, hcl.Diagnostics) {
			v, ok, d := StringMap(e, "f")
			return v, ok, d
		}, map[string]string(nil), false, `The key "a" is written twice`},
		{"map key twice, quoted once", `{ a = "x", "a" = "z" }`, func(e hcl.Expression) (any, bool, hcl.Diagnostics) {
			v, ok, d := StringMap(e, "f")
			return v, ok, d
		}, map[string]string(nil), false, `The key "a" is written twice`},
		{"key twice in a nested object", `[{ a = { b = 1, b = 2 } }]`, func(e hcl.Expression) (any, bool, hcl.Diagnostics) {
			_, ok, d := Value(e, "f")
			if d.HasErrors() && d[0].Summary != "Invalid f[0].a" {
				t.Errorf("summary %q, want Invalid f[0].a", d[0].Summary)
			}
			return nil, ok, d
		}, nil, false, `The key "b" is written twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := expr(t, tc.src)
			got, set, diags := tc.decode(e)
			if tc.wantErr != "" {
				if !diags.HasErrors() || !strings.Contains(diags.Error(), tc.wantErr) {
					t.Fatalf("diags = %v, want an error containing %q", diags, tc.wantErr)
				}
				if d := diags[0]; d.Subject == nil || d.Subject.Filename != "x.hcl" {
					t.Errorf("error has no source range: %+v", d)
				}
				if !strings.Contains(diags[0].Summary, "f") {
					t.Errorf("summary %q does not name the field", diags[0].Summary)
				}
			} else if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			if set != tc.wantSet {
				t.Errorf("set = %v, want %v", set, tc.wantSet)
			}
			if tc.wantErr == "" && got != tc.want {
				t.Errorf("value = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func wrap[T any](f func(hcl.Expression, string) (T, bool, hcl.Diagnostics)) func(hcl.Expression) (any, bool, hcl.Diagnostics) {
	return func(e hcl.Expression) (any, bool, hcl.Diagnostics) {
		v, ok, d := f(e, "f")
		return v, ok, d
	}
}

func TestRequired(t *testing.T) {
	if d := Required(expr(t, `"x"`), "a.b"); d.HasErrors() {
		t.Errorf("a set value is reported missing: %v", d)
	}
	d := Required(expr(t, `null`), "a.b")
	if !d.HasErrors() || d[0].Summary != "Missing a.b" || !strings.Contains(d[0].Detail, `"b"`) {
		t.Errorf("Required(null) = %v", d)
	}
	if d := Required(nil, "a"); !d.HasErrors() {
		t.Errorf("Required(nil) reports nothing")
	}
}
