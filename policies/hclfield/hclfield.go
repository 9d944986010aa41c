// Package hclfield turns single HCL attribute expressions into Go values,
// with diagnostics that carry the expression's source range and name the
// field, so an operator reads "Invalid forecast.horizon" next to
// "policy.hcl:12,15-20" exactly as for a syntax error.
//
// Every decoder evaluates the expression without variables or functions:
// foreshape's configuration and policies are static files. Each decoder
// returns (value, set, diagnostics); set is false when the attribute was
// absent or explicitly null, in which case the caller keeps its default.
//
// This package must never log, read the environment or the clock, or panic
// on any input: it only converts and reports.
package hclfield

import (
	"fmt"
	"math"
	"math/big"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Invalid returns an error diagnostic for field, pointing at rng, worded as
// "Invalid <field>" with the given detail. Callers use it for semantic
// checks (ranges, cross-field rules) so that every message has one shape.
func Invalid(rng hcl.Range, field, format string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Invalid " + field,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  rng.Ptr(),
	}
}

// Warning returns a warning diagnostic for field pointing at rng.
func Warning(rng hcl.Range, field, format string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  "Questionable " + field,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  rng.Ptr(),
	}
}

// IsSet reports whether expr is present and not null. It does not report
// evaluation errors; the typed decoders do.
func IsSet(expr hcl.Expression) bool {
	if expr == nil {
		return false
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		return true
	}
	return !v.IsNull()
}

// Value evaluates expr statically, for decoders of shapes this package
// does not cover (such as "a string or a list"). ok is false when the
// caller must stop: the expression was absent, null, or did not evaluate;
// evaluation errors name field.
func Value(expr hcl.Expression, field string) (cty.Value, bool, hcl.Diagnostics) {
	return value(expr, field)
}

func value(expr hcl.Expression, field string) (cty.Value, bool, hcl.Diagnostics) {
	if expr == nil {
		return cty.NilVal, false, nil
	}
	if diags := repeatedKeys(expr, field); diags.HasErrors() {
		return cty.NilVal, false, diags
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		for _, d := range diags {
			if d.Summary != "" && !strings.Contains(d.Summary, field) {
				d.Summary = fmt.Sprintf("%s (in %s)", d.Summary, field)
			}
		}
		return cty.NilVal, false, diags
	}
	if v.IsNull() {
		return cty.NilVal, false, diags
	}
	if !v.IsWhollyKnown() {
		return cty.NilVal, false, append(diags, Invalid(expr.Range(), field, "The value must be known when the file is read."))
	}
	return v, true, diags
}

// repeatedKeys refuses a key written twice in an object of expr, at any
// depth ({ a = "x", a = "y" }): HCL keeps the later value and drops the
// earlier without a word, so one of the two settings took no effect.
func repeatedKeys(expr hcl.Expression, field string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	switch e := expr.(type) {
	case *hclsyntax.ObjectConsExpr:
		seen := map[string]bool{}
		for _, item := range e.Items {
			inner := field
			if key, ok := staticKey(item.KeyExpr); ok {
				if seen[key] {
					diags = append(diags, Invalid(item.KeyExpr.Range(), field,
						"The key %q is written twice in this object: only the later value would be used, and the earlier dropped without a word. Write it once.", key))
				}
				seen[key] = true
				inner = field + "." + key
			}
			diags = append(diags, repeatedKeys(item.ValueExpr, inner)...)
		}
	case *hclsyntax.TupleConsExpr:
		for i, x := range e.Exprs {
			switch x.(type) {
			case *hclsyntax.ObjectConsExpr, *hclsyntax.TupleConsExpr:
				diags = append(diags, repeatedKeys(x, fmt.Sprintf("%s[%d]", field, i))...)
			}
		}
	}
	return diags
}

// staticKey is an object key as HCL reads it (a name, a string or a
// number, which it makes a string), when it evaluates without variables.
func staticKey(expr hcl.Expression) (string, bool) {
	k, diags := expr.Value(nil)
	if diags.HasErrors() || !k.IsWhollyKnown() || k.IsNull() {
		return "", false
	}
	s, err := convert.Convert(k, cty.String)
	if err != nil {
		return "", false
	}
	return s.AsString(), true
}

// typeName names a cty type for an operator: "string", "number", "list".
func typeName(t cty.Type) string {
	switch {
	case t == cty.String:
		return "string"
	case t == cty.Number:
		return "number"
	case t == cty.Bool:
		return "bool"
	case t.IsTupleType() || t.IsListType() || t.IsSetType():
		return "list"
	case t.IsObjectType() || t.IsMapType():
		return "object"
	default:
		return t.FriendlyName()
	}
}

func wrongType(expr hcl.Expression, field, want string, got cty.Type) *hcl.Diagnostic {
	return Invalid(expr.Range(), field, "A %s is required, got a %s.", want, typeName(got))
}

// String decodes a string. Numbers and bools are not converted: a string
// field takes a quoted value.
func String(expr hcl.Expression, field string) (string, bool, hcl.Diagnostics) {
	v, ok, diags := value(expr, field)
	if !ok {
		return "", false, diags
	}
	if v.Type() != cty.String {
		return "", false, append(diags, wrongType(expr, field, "string", v.Type()))
	}
	return v.AsString(), true, diags
}

// NonEmptyString decodes a string that must not be blank when set.
func NonEmptyString(expr hcl.Expression, field string) (string, bool, hcl.Diagnostics) {
	s, ok, diags := String(expr, field)
	if ok && strings.TrimSpace(s) == "" {
		return "", false, append(diags, Invalid(expr.Range(), field, "The value must not be empty."))
	}
	return s, ok, diags
}

// Bool decodes a bool. The strings "true" and "false" are not accepted.
func Bool(expr hcl.Expression, field string) (bool, bool, hcl.Diagnostics) {
	v, ok, diags := value(expr, field)
	if !ok {
		return false, false, diags
	}
	if v.Type() != cty.Bool {
		return false, false, append(diags, wrongType(expr, field, "bool (true or false)", v.Type()))
	}
	return v.True(), true, diags
}

// Number decodes a finite number.
func Number(expr hcl.Expression, field string) (float64, bool, hcl.Diagnostics) {
	v, ok, diags := value(expr, field)
	if !ok {
		return 0, false, diags
	}
	if v.Type() != cty.Number {
		return 0, false, append(diags, wrongType(expr, field, "number", v.Type()))
	}
	bf := v.AsBigFloat()
	if bf.IsInf() {
		return 0, false, append(diags, Invalid(expr.Range(), field, "The number must be finite."))
	}
	f, _ := bf.Float64()
	if math.IsInf(f, 0) {
		return 0, false, append(diags, Invalid(expr.Range(), field, "The number %s is too large.", bf.Text('g', 10)))
	}
	return f, true, diags
}

// Int decodes a whole number between -2^31 and 2^31-1, the range every
// integer setting fits in on every platform.
func Int(expr hcl.Expression, field string) (int, bool, hcl.Diagnostics) {
	v, ok, diags := value(expr, field)
	if !ok {
		return 0, false, diags
	}
	if v.Type() != cty.Number {
		return 0, false, append(diags, wrongType(expr, field, "whole number", v.Type()))
	}
	bf := v.AsBigFloat()
	if !bf.IsInt() {
		return 0, false, append(diags, Invalid(expr.Range(), field, "A whole number is required, got %s.", bf.Text('g', 10)))
	}
	i, acc := bf.Int64()
	if acc != big.Exact || i > math.MaxInt32 || i < math.MinInt32 {
		return 0, false, append(diags, Invalid(expr.Range(), field, "The number %s is out of range.", bf.Text('g', 10)))
	}
	return int(i), true, diags
}

// StringList decodes a list of strings. A single string is not promoted to
// a list: the brackets are part of the syntax the operator must see.
func StringList(expr hcl.Expression, field string) ([]string, bool, hcl.Diagnostics) {
	v, ok, diags := value(expr, field)
	if !ok {
		return nil, false, diags
	}
	t := v.Type()
	if !(t.IsTupleType() || t.IsListType() || t.IsSetType()) {
		return nil, false, append(diags, wrongType(expr, field, "list of strings", t))
	}
	out := make([]string, 0, v.LengthInt())
	rngs := elementRanges(expr)
	i := 0
	for it := v.ElementIterator(); it.Next(); i++ {
		_, ev := it.Element()
		rng := expr.Range()
		if i < len(rngs) {
			rng = rngs[i]
		}
		if ev.IsNull() || ev.Type() != cty.String {
			diags = append(diags, Invalid(rng, field, "Element %d must be a string, got %s.", i, nullOrType(ev)))
			continue
		}
		out = append(out, ev.AsString())
	}
	if diags.HasErrors() {
		return nil, false, diags
	}
	return out, true, diags
}

// StringMap decodes an object or map whose values are all strings. Keys
// come back sorted in Keys order by the caller if needed.
func StringMap(expr hcl.Expression, field string) (map[string]string, bool, hcl.Diagnostics) {
	v, ok, diags := value(expr, field)
	if !ok {
		return nil, false, diags
	}
	t := v.Type()
	if !(t.IsObjectType() || t.IsMapType()) {
		return nil, false, append(diags, wrongType(expr, field, "map of strings", t))
	}
	out := make(map[string]string, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		k, ev := it.Element()
		if ev.IsNull() {
			diags = append(diags, Invalid(expr.Range(), field, "The value of key %q must be a string, got null.", k.AsString()))
			continue
		}
		if ev.Type() != cty.String {
			diags = append(diags, Invalid(expr.Range(), field, "The value of key %q must be a string, got a %s.", k.AsString(), typeName(ev.Type())))
			continue
		}
		out[k.AsString()] = ev.AsString()
	}
	if diags.HasErrors() {
		return nil, false, diags
	}
	return out, true, diags
}

// Enum decodes a string that must be one of allowed.
func Enum(expr hcl.Expression, field string, allowed []string) (string, bool, hcl.Diagnostics) {
	s, ok, diags := String(expr, field)
	if !ok {
		return "", false, diags
	}
	for _, a := range allowed {
		if s == a {
			return s, true, diags
		}
	}
	return "", false, append(diags, Invalid(expr.Range(), field, "%q is not one of %s.", s, quoteList(allowed)))
}

// Duration decodes a duration string such as "90s", "1h30m" or "7d".
func Duration(expr hcl.Expression, field string) (time.Duration, bool, hcl.Diagnostics) {
	v, ok, diags := value(expr, field)
	if !ok {
		return 0, false, diags
	}
	if v.Type() != cty.String {
		return 0, false, append(diags, Invalid(expr.Range(), field, `A duration string such as "30s", "15m", "1h" or "7d" is required, got a %s.`, typeName(v.Type())))
	}
	d, err := ParseDuration(v.AsString())
	if err != nil {
		return 0, false, append(diags, Invalid(expr.Range(), field, "%s.", err))
	}
	return d, true, diags
}

// URL decodes an absolute http or https URL with a host.
func URL(expr hcl.Expression, field string) (*url.URL, bool, hcl.Diagnostics) {
	s, ok, diags := String(expr, field)
	if !ok {
		return nil, false, diags
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, false, append(diags, Invalid(expr.Range(), field, "%q is not a valid URL: %s.", s, unwrapURLError(err)))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, false, append(diags, Invalid(expr.Range(), field, "%q must use the http or https scheme.", s))
	}
	if u.Host == "" {
		return nil, false, append(diags, Invalid(expr.Range(), field, "%q has no host.", s))
	}
	return u, true, diags
}

func unwrapURLError(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return err.Error()
}

// durationUnits maps the units ParseDuration accepts to their length.
var durationUnits = map[string]time.Duration{
	"ns": time.Nanosecond,
	"us": time.Microsecond,
	"µs": time.Microsecond,
	"ms": time.Millisecond,
	"s":  time.Second,
	"m":  time.Minute,
	"h":  time.Hour,
	"d":  24 * time.Hour,
	"w":  7 * 24 * time.Hour,
}

// ParseDuration parses a non-negative duration: a sequence of decimal
// numbers with units, as time.ParseDuration, plus "d" (24h) and "w" (7d)
// which seasonal periods need. Signs are not accepted.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	if s == "" {
		return 0, fmt.Errorf(`empty duration; use a value such as "30s", "15m", "1h" or "7d"`)
	}
	if s == "0" {
		return 0, nil
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("%q is negative: a duration here is a length of time, 0 or more", orig)
	}
	var total float64
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("%q is not a duration: expected a number at %q", orig, s)
		}
		num, err := strconv.ParseFloat(s[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration: bad number %q", orig, s[:i])
		}
		s = s[i:]
		j := 0
		for j < len(s) && !(s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		unit := s[:j]
		s = s[j:]
		mult, ok := durationUnits[unit]
		if !ok {
			if unit == "" {
				return 0, fmt.Errorf("%q is not a duration: missing unit (ns, us, ms, s, m, h, d, w)", orig)
			}
			return 0, fmt.Errorf("%q is not a duration: unknown unit %q (use ns, us, ms, s, m, h, d, w)", orig, unit)
		}
		total += float64(num * float64(mult))
		if total >= float64(math.MaxInt64) { // 2^63: one past the largest Duration
			return 0, fmt.Errorf("%q is too long a duration", orig)
		}
	}
	return time.Duration(math.Round(total)), nil
}

// FormatDuration prints d compactly, using "d" for whole days: 7d, 1d12h, 90s.
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	day := 24 * time.Hour
	if d >= day {
		days := d / day
		rest := d % day
		if rest == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%s", days, trimZeroUnits(rest.String()))
	}
	return trimZeroUnits(d.String())
}

// trimZeroUnits drops "0m" and "0s" from time.Duration's form: 1h0m0s → 1h.
func trimZeroUnits(s string) string {
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func nullOrType(v cty.Value) string {
	if v.IsNull() {
		return "null"
	}
	return "a " + typeName(v.Type())
}

// quoteList prints ["a", "b"] as `"a", "b"` for messages.
func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// QuoteList is quoteList for other packages' messages, sorted.
func QuoteList(items []string) string {
	s := append([]string(nil), items...)
	sort.Strings(s)
	return quoteList(s)
}

// elementRanges returns the source range of each element of a list
// expression, or nil when expr is not a literal list.
func elementRanges(expr hcl.Expression) []hcl.Range {
	exprs, diags := hcl.ExprList(expr)
	if diags.HasErrors() {
		return nil
	}
	out := make([]hcl.Range, len(exprs))
	for i, e := range exprs {
		out[i] = e.Range()
	}
	return out
}

// ListElements returns the element expressions of a literal list, for
// callers that validate each element with its own range. ok is false when
// expr is not a literal list.
func ListElements(expr hcl.Expression) ([]hcl.Expression, bool) {
	if expr == nil {
		return nil, false
	}
	exprs, diags := hcl.ExprList(expr)
	if diags.HasErrors() {
		return nil, false
	}
	return exprs, true
}

// Required returns a "Missing <field>" error when expr is absent or null,
// pointing at expr (for an absent attribute, the block that lacks it).
// Decode structs mark every attribute optional, since gohcl cannot require
// an hcl.Expression field; Required is the check that replaces it.
func Required(expr hcl.Expression, field string) hcl.Diagnostics {
	if IsSet(expr) {
		return nil
	}
	attr := field
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		attr = field[i+1:]
	}
	var rng hcl.Range
	if expr != nil {
		rng = expr.Range()
	}
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Missing " + field,
		Detail:   fmt.Sprintf("The argument %q is required, but no definition was found.", attr),
		Subject:  rng.Ptr(),
	}}
}
