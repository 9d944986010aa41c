package api_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/shape"
)

// TestDecisionKindsComplete: every kind the agent records a decision
// under is one GET /v1/decisions?kind= and `decisions -kind` accept (they
// refuse the others), found by reading the agent's code: each Decision
// literal's Kind, a string or one of shape's Kind constants, and the
// strings assigned to a variable named kind.
func TestDecisionKindsComplete(t *testing.T) {
	shapeKinds := map[string]string{"KindSubmit": shape.KindSubmit, "KindReserve": shape.KindReserve,
		"KindRelease": shape.KindRelease, "KindScale": shape.KindScale, "KindStart": shape.KindStart,
		"KindWait": shape.KindWait, "KindCancel": shape.KindCancel}
	found := map[string]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		// kinds notes the Kind of a Decision literal's fields.
		kinds := func(lit *ast.CompositeLit) {
			for _, e := range lit.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				if k, ok := kv.Key.(*ast.Ident); !ok || k.Name != "Kind" {
					continue
				}
				switch v := kv.Value.(type) {
				case *ast.BasicLit:
					s, _ := strconv.Unquote(v.Value)
					found[s] = fset.Position(v.Pos()).String()
				case *ast.SelectorExpr:
					if s, ok := shapeKinds[v.Sel.Name]; ok {
						found[s] = fset.Position(v.Pos()).String()
					}
				case *ast.Ident:
					if s, ok := shapeKinds[v.Name]; ok {
						found[s] = fset.Position(v.Pos()).String()
					}
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			// kind := "retry": a kind chosen before the literal names it.
			if as, ok := n.(*ast.AssignStmt); ok && len(as.Lhs) == len(as.Rhs) {
				for i, l := range as.Lhs {
					id, ok := l.(*ast.Ident)
					v, isStr := as.Rhs[i].(*ast.BasicLit)
					if ok && isStr && v.Kind == token.STRING && strings.EqualFold(id.Name, "kind") {
						s, _ := strconv.Unquote(v.Value)
						found[s] = fset.Position(v.Pos()).String()
					}
				}
			}
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			if isDecisionType(lit.Type) {
				kinds(lit)
			}
			// []state.Decision{{Kind: …}}: the elements' type is elided.
			if at, ok := lit.Type.(*ast.ArrayType); ok && isDecisionType(at.Elt) {
				for _, e := range lit.Elts {
					if el, ok := e.(*ast.CompositeLit); ok && el.Type == nil {
						kinds(el)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) < 10 {
		t.Fatalf("found only %d decision kinds in the agent's code: %v", len(found), found)
	}
	for kind, at := range found {
		if !slices.Contains(api.DecisionKinds, kind) {
			t.Errorf("%s records a decision of kind %q, which api.DecisionKinds (and so ?kind= and -kind) does not list", at, kind)
		}
	}
}

// isDecisionType: state.Decision, api.Decision, or Decision in its own
// package.
func isDecisionType(e ast.Expr) bool {
	switch t := e.(type) {
	case *ast.Ident:
		return t.Name == "Decision"
	case *ast.SelectorExpr:
		return t.Sel.Name == "Decision"
	}
	return false
}
