package command

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/agent/api"
)

// TestTLSErrorHints: an agent that wants a client certificate, or whose
// certificate this command does not trust, is answered with what to set,
// not with the ACL hint every other 403 gets.
func TestTLSErrorHints(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(api.Error{Error: api.DeniedNoClientCert})
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FORESHAPE_CACERT", "")
	for _, tc := range []struct {
		args       []string
		want, nope string
	}{
		{[]string{"-ca-cert", ca}, "set -client-cert and -client-key", "ACLs on"},
		{nil, "set -ca-cert (or FORESHAPE_CACERT) to the agent's tls.ca_file", "ACLs on"},
	} {
		code, _, errOut := runCLI(t, append([]string{"status", "-address", srv.URL}, tc.args...)...)
		if code != ExitInvalid || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, tc.nope) {
			t.Errorf("%v: exit %d, %q; want 1 and %q, without %q", tc.args, code, errOut, tc.want, tc.nope)
		}
	}
}
