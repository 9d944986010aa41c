package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/foreshape/foreshape/internal/docblock"
)

// docBlock is the fenced code block that follows the marker
// "<!-- MARKER -->" in docs/deployment.md ("workload-identity: nomad"), its
// lines less the indentation of the fence (a list item's).
func docBlock(t *testing.T, doc, marker string) string {
	t.Helper()
	b, err := docblock.HCL(doc, marker)
	if err != nil {
		t.Fatalf("docs/deployment.md: %v", err)
	}
	return b
}

// The section of docs/deployment.md that shows how the jobs use their
// workload identity, and the one that turns them to a static token.
const (
	identitySection = "The agents' workload identity"
	staticSection   = "A static token instead of workload identity"
)

// templatesData are the data of the task's templates, as the job file
// spells them (escapes and all).
func templatesData(t *testing.T, task *hclsyntax.Body, src []byte) []string {
	t.Helper()
	var out []string
	for _, tb := range blocks(task, "template") {
		out = append(out, string(tb.Body.Attributes["data"].SrcRange.SliceBytes(src)))
	}
	return out
}

// TestJobsUseTheirWorkloadIdentity: both jobs call Nomad as
// docs/deployment.md's "The agents' workload identity" shows: its identity
// block and its nomad block's lines are each in both job files once; the
// task's identity is the default one, written to a file and not to the
// environment; no template sets NOMAD_TOKEN or reads a nomad_token item;
// and the configuration template renders one that the agent loads, with
// nomad.token_file on the identity's file and nomad.address on the Task
// API's socket, both in NOMAD_SECRETS_DIR, and no token.
func TestJobsUseTheirWorkloadIdentity(t *testing.T) {
	doc := deploymentDoc(t)
	if !strings.Contains(section(t, doc, identitySection), "TestJobsUseTheirWorkloadIdentity") {
		t.Errorf("docs/deployment.md's %q does not name this test", identitySection)
	}
	identity, nomad := docBlock(t, doc, "workload-identity: identity"), docBlock(t, doc, "workload-identity: nomad")
	for _, j := range jobs {
		t.Run(j.name, func(t *testing.T) {
			src := mustSrc(t, j.file)
			for _, s := range []string{identity, nomad} {
				if n := strings.Count(string(src), s); n != 1 {
					t.Errorf("%s holds docs/deployment.md's\n%s%d times; want once", j.file, s, n)
				}
			}
			b, _ := parse(t, j.file)
			task := one(t, one(t, one(t, b, "job"), "group"), "task")
			id := one(t, task, "identity")
			if _, named := id.Attributes["name"]; named || !value(t, id, "file").True() {
				t.Error("the identity block must be the default identity's, written to a file (file = true)")
			}
			if _, ok := id.Attributes["env"]; ok && value(t, id, "env").True() {
				t.Error("the identity block puts the token in the environment (NOMAD_TOKEN), which the agent refuses with nomad.token_file")
			}
			for _, data := range templatesData(t, task, src) {
				if strings.Contains(data, "NOMAD_TOKEN") || strings.Contains(data, ".nomad_token") {
					t.Errorf("a template of %s sets or reads a Nomad token:\n%s", j.file, data)
				}
			}
			cfg := renderAgentConfig(t, j, task)
			secrets := ""
			if dir, ok := strings.CutSuffix(cfg.Nomad.TokenFile, "/nomad_token"); ok {
				secrets = dir
			}
			if secrets == "" || !strings.HasSuffix(secrets, "secrets") || cfg.Nomad.Address != "unix://"+secrets+"/api.sock" || cfg.Nomad.Token != "" {
				t.Errorf("nomad.address %q, nomad.token_file %q; want the Task API's socket and the identity's file in NOMAD_SECRETS_DIR, and no token",
					cfg.Nomad.Address, cfg.Nomad.TokenFile)
			}
		})
	}
}

// TestStaticTokenVariant makes the three changes docs/deployment.md's
// "A static token instead of workload identity" gives to each job: the
// task's identity block goes, with the comment above it; the nomad
// block's Task API address and token_file give way to the documented
// address line; the environment template gains the documented
// NOMAD_TOKEN line before its CONSUL_HTTP_TOKEN one. Each must apply
// exactly once. The changed job parses, has no identity block, sets
// NOMAD_TOKEN in its environment from the nomad_token item the section
// adds to step 3's variable, and its configuration template renders one
// that the agent loads, with nomad.address on the node's Nomad agent and
// neither token_file nor token. With Nomad's TLS, the section's nomad
// lines take the address line's place (https://, nomad.ca_file,
// cert_file and key_file in the task's secrets directory), and a copy of
// the secrets/ca.pem template renders each of those files from the
// variable's nomad_ca, nomad_cert and nomad_key: the rendered
// configuration names exactly the files the templates render.
func TestStaticTokenVariant(t *testing.T) {
	doc := deploymentDoc(t)
	static := section(t, doc, staticSection)
	if !strings.Contains(static, "TestStaticTokenVariant") {
		t.Errorf("docs/deployment.md's %q does not name this test", staticSection)
	}
	if !strings.Contains(static, "`nomad_token=…`") {
		t.Errorf("docs/deployment.md's %q does not add a `nomad_token=…` item to step 3's variable", staticSection)
	}
	identity, nomad := docBlock(t, doc, "workload-identity: identity"), docBlock(t, doc, "workload-identity: nomad")
	address, tokenLine := docBlock(t, doc, "static-token: nomad"), docBlock(t, doc, "static-token: env")
	nomadTLS := docBlock(t, doc, "static-token: nomad-tls")
	// The files the TLS lines name, and the items the section renders
	// them from.
	tlsFiles := []struct{ file, item string }{{"nomad-ca.pem", "nomad_ca"}, {"nomad-cert.pem", "nomad_cert"}, {"nomad-key.pem", "nomad_key"}}
	for _, f := range tlsFiles {
		one := strings.Join(strings.Fields(static), " ")
		if !strings.Contains(one, "`secrets/"+f.file+"`") || !strings.Contains(one, "`."+f.item+"`") || !strings.Contains(one, f.item+"=@") {
			t.Errorf("docs/deployment.md's %q does not render secrets/%s from the variable's %s", staticSection, f.file, f.item)
		}
	}
	const consulLine = "          CONSUL_HTTP_TOKEN={{ .consul_token }}\n"
	// Pasted as shown, the lines sit where the job's own do.
	for _, c := range []struct{ block, indent string }{{address, "            address "}, {tokenLine, "          NOMAD_TOKEN="}} {
		if !strings.HasPrefix(c.block, c.indent) || strings.Count(c.block, "\n") != 1 {
			t.Errorf("the documented line %q is not one line indented as the job's lines it joins (%q)", c.block, c.indent)
		}
	}
	for _, l := range strings.SplitAfter(strings.TrimSuffix(nomadTLS, "\n"), "\n") {
		if !strings.HasPrefix(l, "            ") || strings.HasPrefix(l, "             ") {
			t.Errorf("the documented TLS line %q is not indented as the job's nomad block's lines", l)
		}
	}
	// The identity block, the comment lines right above it and the blank
	// line after it.
	identityRE := regexp.MustCompile("(?m)(?:^      #.*\n)*" + regexp.QuoteMeta(identity) + "\n")
	for _, j := range jobs {
		for _, withTLS := range []bool{false, true} {
			name := j.name
			if withTLS {
				name += " with Nomad's TLS"
			}
			t.Run(name, func(t *testing.T) {
				text := string(mustSrc(t, j.file))
				if n := len(identityRE.FindAllStringIndex(text, -1)); n != 1 {
					t.Fatalf("%s holds the documented identity block %d times; the documented change needs it once", j.file, n)
				}
				for _, s := range []string{nomad, consulLine} {
					if n := strings.Count(text, s); n != 1 {
						t.Fatalf("%s holds %q %d times; the documented change needs it once", j.file, strings.TrimSpace(s), n)
					}
				}
				text = identityRE.ReplaceAllLiteralString(text, "")
				if withTLS {
					text = strings.Replace(text, nomad, nomadTLS, 1)
					// A copy of the secrets/ca.pem template for each file,
					// after it.
					caRE := regexp.MustCompile(`(?m)^      template \{\n(?:        .*\n)*?        destination = "secrets/ca\.pem"\n(?:        .*\n)*?      \}\n`)
					if n := len(caRE.FindAllStringIndex(text, -1)); n != 1 {
						t.Fatalf("%s holds the secrets/ca.pem template %d times; the documented change copies it, once", j.file, n)
					}
					ca := caRE.FindString(text)
					var copies strings.Builder
					for _, f := range tlsFiles {
						c := strings.Replace(ca, `"secrets/ca.pem"`, strconv.Quote("secrets/"+f.file), 1)
						copies.WriteString("\n" + strings.Replace(c, "{{ .ca }}", "{{ ."+f.item+" }}", 1))
					}
					text = strings.Replace(text, ca, ca+copies.String(), 1)
				} else {
					text = strings.Replace(text, nomad, address, 1)
				}
				text = strings.Replace(text, consulLine, tokenLine+consulLine, 1)
				path := filepath.Join(t.TempDir(), j.file)
				if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
				b, _ := parse(t, path)
				task := one(t, one(t, one(t, b, "job"), "group"), "task")
				if len(blocks(task, "identity")) != 0 {
					t.Error("the changed task still has an identity block")
				}
				var sets int
				rendered := map[string]bool{}
				for _, tb := range blocks(task, "template") {
					data := str(t, tb.Body, "data")
					rendered[str(t, tb.Body, "destination")] = true
					if strings.Contains(data, "NOMAD_TOKEN={{ .nomad_token }}") {
						sets++
						if _, ok := tb.Body.Attributes["env"]; !ok || !value(t, tb.Body, "env").True() {
							t.Errorf("the template of %s sets NOMAD_TOKEN but is not the task's environment (env = true)", str(t, tb.Body, "destination"))
						}
					}
				}
				if sets != 1 {
					t.Errorf("%d templates set NOMAD_TOKEN from the variable's nomad_token; want the environment's", sets)
				}
				want := append(documentedVariableItems(t), "nomad_token")
				if withTLS {
					for _, f := range tlsFiles {
						want = append(want, f.item)
					}
				}
				slices.Sort(want)
				if got := variableItems(t, j, task, []byte(text)); !slices.Equal(got, want) {
					t.Errorf("the changed %s reads %q from its variable; want step 3's items and nomad_token, %q", j.file, got, want)
				}
				cfg := renderAgentConfig(t, j, task)
				wantAddr := "http://10.0.0.21:4646"
				if withTLS {
					wantAddr = "https://10.0.0.21:4646"
				}
				if cfg.Nomad.Address != wantAddr || cfg.Nomad.TokenFile != "" || cfg.Nomad.Token != "" {
					t.Errorf("nomad.address %q, nomad.token_file %q; want the node's Nomad agent, %s, and the token from the environment alone",
						cfg.Nomad.Address, cfg.Nomad.TokenFile, wantAddr)
				}
				if withTLS {
					for i, got := range []string{cfg.Nomad.CAFile, cfg.Nomad.CertFile, cfg.Nomad.KeyFile} {
						f := tlsFiles[i].file
						if filepath.Base(got) != f || filepath.Base(filepath.Dir(got)) != "secrets" || !rendered["secrets/"+f] {
							t.Errorf("nomad's TLS file %q; want secrets/%s, which a template renders", got, f)
						}
					}
				} else if cfg.Nomad.CAFile != "" || cfg.Nomad.CertFile != "" || cfg.Nomad.KeyFile != "" {
					t.Errorf("nomad's TLS files %q, %q, %q over http://; want none", cfg.Nomad.CAFile, cfg.Nomad.CertFile, cfg.Nomad.KeyFile)
				}
				if !j.server && cfg.Nomad.NodeID == "" {
					t.Error("the client agent lost its nomad.node_id")
				}
			})
		}
	}
}
