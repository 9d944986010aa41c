package command

import (
	"go/ast"
	"go/constant"
	"go/types"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/tools/go/packages"
)

// flagDefault is a flag's default as its definition gives it.
type flagDefault struct {
	kind  string // String, Int, Float64, Bool, Duration, …
	value constant.Value
}

// TestHelpDefaultsAreTheFlags: every "Default: V." a command's -help
// gives for one of its options is the default its Run defines that flag
// with, when the definition gives one (a constant that is not zero: a
// zero or empty default is the code's cue to work one out, as the help
// then says in words) and the help gives a value, not words ("Default:
// the agent's.").
func TestHelpDefaultsAreTheFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the package")
	}
	t.Parallel()
	cfg := &packages.Config{Mode: packages.NeedName | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo, Tests: false}
	pkgs, err := packages.Load(cfg, ".")
	if err != nil || len(pkgs) != 1 || len(pkgs[0].Errors) > 0 {
		t.Fatalf("loading the package: %v %v", err, pkgs)
	}
	p := pkgs[0]
	constOf := func(e ast.Expr) constant.Value {
		if tv, ok := p.TypesInfo.Types[e]; ok {
			return tv.Value
		}
		return nil
	}
	flags := map[string]map[string]flagDefault{} // receiver type: flag: default
	helps := map[string]string{}                 // receiver type: its help's constant text
	for _, f := range p.Syntax {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || fn.Body == nil {
				continue
			}
			recv := types.ExprString(fn.Recv.List[0].Type)
			switch fn.Name.Name {
			case "Run":
				ast.Inspect(fn.Body, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok {
						return true
					}
					sel, ok := call.Fun.(*ast.SelectorExpr)
					if !ok {
						return true
					}
					kind, isVar := strings.CutSuffix(sel.Sel.Name, "Var")
					args := call.Args
					if isVar {
						if len(args) < 1 {
							return true
						}
						args = args[1:]
					}
					switch kind {
					case "String", "Int", "Int64", "Uint", "Float64", "Bool", "Duration":
					default:
						return true
					}
					if len(args) < 2 || constOf(args[0]) == nil || constOf(args[0]).Kind() != constant.String {
						return true
					}
					if v := constOf(args[1]); v != nil {
						if flags[recv] == nil {
							flags[recv] = map[string]flagDefault{}
						}
						flags[recv][constant.StringVal(constOf(args[0]))] = flagDefault{kind, v}
					}
					return true
				})
			case "Help":
				var parts []string
				ast.Inspect(fn.Body, func(n ast.Node) bool {
					e, ok := n.(ast.Expr)
					if !ok {
						return true
					}
					if v := constOf(e); v != nil && v.Kind() == constant.String {
						parts = append(parts, constant.StringVal(v))
						return false
					}
					return true
				})
				helps[recv] = strings.Join(parts, "\n")
			}
		}
	}
	option := regexp.MustCompile(`(?m)^\s{2,}-([a-z0-9-]+)`)
	dflt := regexp.MustCompile(`Default:\s+(\S+?)[.,;]?(?:\s|$)`)
	checked := 0
	for recv, help := range helps {
		locs := option.FindAllStringSubmatchIndex(help, -1)
		for i, l := range locs {
			name := help[l[2]:l[3]]
			end := len(help)
			if i+1 < len(locs) {
				end = locs[i+1][0]
			}
			m := dflt.FindStringSubmatch(help[l[1]:end])
			def, ok := flags[recv][name]
			if m == nil || !ok || isZero(def) || prose[m[1]] {
				continue
			}
			checked++
			if !sameDefault(def, m[1]) {
				t.Errorf("%s's -help gives -%s's default as %q; its flag's is %s", recv, name, m[1], def.value.ExactString())
			}
		}
	}
	t.Logf("checked %d defaults", checked)
	if checked < 10 {
		t.Fatalf("checked %d defaults given in -help: the scan is broken", checked)
	}
}

// prose are the words that start a default given in words ("Default:
// the agent's."), not as a value.
var prose = map[string]bool{"the": true, "a": true, "an": true, "every": true}

func isZero(d flagDefault) bool {
	switch d.value.Kind() {
	case constant.String:
		return constant.StringVal(d.value) == ""
	case constant.Bool:
		return !constant.BoolVal(d.value)
	}
	return constant.Sign(d.value) == 0
}

// sameDefault reports whether text (from -help) names the default d.
func sameDefault(d flagDefault, text string) bool {
	switch d.kind {
	case "String":
		return constant.StringVal(d.value) == text
	case "Bool":
		return strconv.FormatBool(constant.BoolVal(d.value)) == text
	case "Duration":
		n, _ := constant.Int64Val(d.value)
		got, err := time.ParseDuration(text)
		return err == nil && got == time.Duration(n)
	case "Float64":
		f, _ := constant.Float64Val(d.value)
		got, err := strconv.ParseFloat(text, 64)
		return err == nil && got == f
	}
	n, _ := constant.Int64Val(d.value)
	got, err := strconv.ParseInt(text, 10, 64)
	return err == nil && got == n
}
