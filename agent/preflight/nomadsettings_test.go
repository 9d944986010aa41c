package preflight_test

import (
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/testpki"
)

// TestNomadSettingsTakeEffect: the nomad block's region, namespace and
// token reach every call the agent makes to Nomad.
func TestNomadSettingsTakeEffect(t *testing.T) {
	var mu sync.Mutex
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r
		mu.Unlock()
		w.Header().Set("X-Nomad-Index", "1")
		_, _ = w.Write([]byte("[]"))
	}))
	defer srv.Close()
	cfg := clientOf(config.Default())
	for field, v := range map[string]string{"nomad.address": srv.URL, "nomad.region": "eu", "nomad.namespace": "ops", "nomad.token": "nomad-t0k"} {
		if diags := config.Set(cfg, field, v, "a test"); diags.HasErrors() {
			t.Fatal(diags.Error())
		}
	}
	start, diags := preflight.Check(cfg, preflight.Options{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if _, _, err := start.Nomad.Jobs().List(nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if q := got.URL.Query(); q.Get("region") != "eu" || q.Get("namespace") != "ops" || got.Header.Get("X-Nomad-Token") != "nomad-t0k" {
		t.Errorf("Nomad was asked %s with token %q; want region eu, namespace ops, token nomad-t0k", got.URL, got.Header.Get("X-Nomad-Token"))
	}
}

// TestNomadTLSSettingsTakeEffect: ca_file, cert_file and key_file,
// tls_server_name and skip_verify are what the agent's TLS to Nomad
// checks and presents; a Nomad that requires a client certificate signed
// by its CA answers only with them.
func TestNomadTLSSettingsTakeEffect(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "nomad")
	server := ca.Issue(t, "server.global.nomad")
	files := testpki.WriteFiles(t, dir, "nomad-client", ca, ca.Issue(t, "client.global.nomad"))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Nomad-Index", "1")
		_, _ = w.Write([]byte("[]"))
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{server.TLSCertificate(t)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	other := testpki.WriteFiles(t, dir, "other", testpki.NewCA(t, "other"), ca.Issue(t, "x"))

	for _, tc := range []struct {
		name     string
		settings map[string]string
		err      string // in the call's error; empty: the call succeeds
	}{
		{"CA, client certificate and server name", map[string]string{"nomad.ca_file": files.CA,
			"nomad.cert_file": files.Cert, "nomad.key_file": files.Key, "nomad.tls_server_name": "server.global.nomad"}, ""},
		{"tls_server_name is checked", map[string]string{"nomad.ca_file": files.CA,
			"nomad.cert_file": files.Cert, "nomad.key_file": files.Key, "nomad.tls_server_name": "server.eu.nomad"}, "server.eu.nomad"},
		{"ca_file is what the server's certificate is checked against", map[string]string{"nomad.ca_file": other.CA,
			"nomad.cert_file": files.Cert, "nomad.key_file": files.Key}, "certificate"},
		{"skip_verify checks nothing", map[string]string{"nomad.skip_verify": "true",
			"nomad.cert_file": files.Cert, "nomad.key_file": files.Key}, ""},
		{"without a client certificate Nomad refuses", map[string]string{"nomad.ca_file": files.CA}, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := clientOf(config.Default())
			if diags := config.Set(cfg, "nomad.address", srv.URL, "a test"); diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			for field, v := range tc.settings {
				if diags := config.Set(cfg, field, v, "a test"); diags.HasErrors() {
					t.Fatal(diags.Error())
				}
			}
			start, diags := preflight.Check(cfg, preflight.Options{})
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			_, _, err := start.Nomad.Jobs().List(nil)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("the call failed: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("the call answered %v; want an error naming %q", err, tc.err)
			}
		})
	}
}
