package nomadjob

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

func decode(t *testing.T, src string) (any, hcl.Diagnostics) {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "t.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return Decode(f.Body, "target.nomad-job")
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		src     string
		want    *Config
		wantErr string
	}{
		{"minimal", "job = \"web\"\ngroup = \"fe\"", &Config{Job: "web", Group: "fe", DeploymentWait: DefaultDeploymentWait}, ""},
		{"all", "job = \"web\"\ngroup = \"fe\"\nnamespace = \"prod\"\nregion = \"eu\"\ndeployment_wait = \"30m\"",
			&Config{Job: "web", Group: "fe", Namespace: "prod", Region: "eu", DeploymentWait: 30 * time.Minute}, ""},
		{"wait zero", "job = \"web\"\ngroup = \"fe\"\ndeployment_wait = \"0s\"", nil, "Invalid target.nomad-job.deployment_wait"},
		{"wait long", "job = \"web\"\ngroup = \"fe\"\ndeployment_wait = \"3h\"", nil, "Invalid target.nomad-job.deployment_wait"},
		{"wait number", "job = \"web\"\ngroup = \"fe\"\ndeployment_wait = 30", nil, "Invalid target.nomad-job.deployment_wait"},
		{"no job", `group = "fe"`, nil, "Missing target.nomad-job.job"},
		{"no group", `job = "web"`, nil, "Missing target.nomad-job.group"},
		{"empty job", "job = \"\"\ngroup = \"fe\"", nil, "Invalid target.nomad-job.job"},
		{"job with slash", "job = \"a/b\"\ngroup = \"fe\"", nil, "Invalid target.nomad-job.job"},
		{"job of 128 characters", "job = \"" + strings.Repeat("j", 128) + "\"\ngroup = \"fe\"",
			&Config{Job: strings.Repeat("j", 128), Group: "fe", DeploymentWait: DefaultDeploymentWait}, ""},
		{"job of 129 characters", "job = \"" + strings.Repeat("j", 129) + "\"\ngroup = \"fe\"", nil, "at most 128 characters"},
		{"region with a space", "job = \"web\"\ngroup = \"fe\"\nregion = \"e u\"", nil, "Invalid target.nomad-job.region"},
		{"namespace wildcard", "job = \"web\"\ngroup = \"fe\"\nnamespace = \"*\"", nil, "Invalid target.nomad-job.namespace"},
		{"group number", "job = \"web\"\ngroup = 3", nil, "Invalid target.nomad-job.group"},
		{"unknown", "job = \"web\"\ngroup = \"fe\"\ncount = 3", nil, "Unsupported argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, diags := decode(t, tc.src)
			if tc.wantErr != "" {
				if !diags.HasErrors() || !strings.Contains(diags.Error(), tc.wantErr) {
					t.Fatalf("diags = %v, want %q", diags, tc.wantErr)
				}
				if diags[0].Subject == nil {
					t.Errorf("error without a position: %v", diags[0])
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}
