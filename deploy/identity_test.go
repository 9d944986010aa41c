package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docBlock is the fenced code block that follows the marker
// "<!-- workload-identity: NAME -->" in docs/deployment.md, its lines
// less the indentation of the fence (a list item's).
func docBlock(t *testing.T, doc, name string) string {
	t.Helper()
	re := regexp.MustCompile("<!-- workload-identity: " + regexp.QuoteMeta(name) + " -->\n( *)```hcl\n((?s:.*?))\n *```")
	m := re.FindStringSubmatch(doc)
	if m == nil {
		t.Fatalf("docs/deployment.md has no hcl block after <!-- workload-identity: %s -->", name)
	}
	var lines []string
	for _, l := range strings.Split(m[2], "\n") {
		lines = append(lines, strings.TrimPrefix(l, m[1]))
	}
	return strings.Join(lines, "\n") + "\n"
}

// TestWorkloadIdentityVariant makes the three changes docs/deployment.md's
// "Workload identity instead of a token" gives to each job: the task's
// identity block (written before its first template), the nomad block's
// Task API address and token_file in place of its address line, and the
// environment template without NOMAD_TOKEN. Each must apply exactly once;
// the changed job parses, asks for its token as a file and not in its
// environment, reads nothing of nomad_token, and its configuration
// template renders one that the agent loads, with nomad.token_file on the
// identity's file and nomad.address on the Task API's socket.
func TestWorkloadIdentityVariant(t *testing.T) {
	doc := deploymentDoc(t)
	if !strings.Contains(section(t, doc, "Workload identity instead of a token"), "TestWorkloadIdentityVariant") {
		t.Error("docs/deployment.md's workload identity section does not name this test")
	}
	identity, nomad := docBlock(t, doc, "identity"), docBlock(t, doc, "nomad")
	const address = "            address = \"http://{{ env \"attr.unique.network.ip-address\" }}:4646\"\n"
	const tokenLine = "          NOMAD_TOKEN={{ .nomad_token }}\n"
	const firstTemplate = "      template {\n"
	// Pasted as shown, the lines sit where the job's own do.
	for _, c := range []struct{ block, indent string }{{identity, "      identity {"}, {nomad, "            address "}} {
		if !strings.HasPrefix(c.block, c.indent) {
			t.Errorf("the documented block %q is not indented as the job's lines it joins (%q)", c.block, c.indent)
		}
	}
	for _, j := range jobs {
		t.Run(j.name, func(t *testing.T) {
			text := string(mustSrc(t, j.file))
			for _, s := range []string{address, tokenLine} {
				if n := strings.Count(text, s); n != 1 {
					t.Fatalf("%s holds %q %d times; the documented change needs it once", j.file, strings.TrimSpace(s), n)
				}
			}
			i := strings.Index(text, firstTemplate)
			if i < 0 {
				t.Fatalf("%s has no template block", j.file)
			}
			text = text[:i] + identity + "\n" + text[i:]
			text = strings.Replace(text, address, nomad, 1)
			text = strings.Replace(text, tokenLine, "", 1)
			path := filepath.Join(t.TempDir(), j.file)
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			b, _ := parse(t, path)
			task := one(t, one(t, one(t, b, "job"), "group"), "task")
			id := one(t, task, "identity")
			if _, named := id.Attributes["name"]; named || !value(t, id, "file").True() {
				t.Error("the identity block must be the default identity's, written to a file (file = true)")
			}
			if _, ok := id.Attributes["env"]; ok && value(t, id, "env").True() {
				t.Error("the identity block puts the token in the environment (NOMAD_TOKEN), which the agent refuses with nomad.token_file")
			}
			if strings.Contains(text, "NOMAD_TOKEN") || strings.Contains(text, ".nomad_token") {
				t.Errorf("the changed %s still reads or sets the Nomad token", j.file)
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
			if !j.server && cfg.Nomad.NodeID == "" {
				t.Error("the client agent lost its nomad.node_id")
			}
		})
	}
}
