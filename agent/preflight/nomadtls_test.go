package preflight_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/testpki"
)

// TestNomadTLSFailuresNameTheSetting: against a Nomad with mutual TLS
// (verify_https_client: it requires a client certificate its CA signed),
// a call that fails in the TLS handshake says, beside Go's words, which
// nomad setting to check: no client certificate (Nomad 2.0.6-dev answers
// "remote error: tls: certificate required", measured) names
// nomad.cert_file and nomad.key_file; one of another CA (which Go's
// client does not send to a server that lists its CAs, so Nomad answers
// the same) names the file and Nomad's CA; a Nomad certificate the agent does not trust names
// nomad.ca_file; one that does not have the name the agent checks (the
// address's host, or nomad.tls_server_name) names nomad.tls_server_name.
// With the right files the call succeeds.
func TestNomadTLSFailuresNameTheSetting(t *testing.T) {
	nomadCA, otherCA := testpki.NewCA(t, "nomad-ca"), testpki.NewCA(t, "other-ca")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Nomad-Index", "1")
		_, _ = w.Write([]byte("[]"))
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{nomadCA.Issue(t, "client.global.nomad").TLSCertificate(t)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    nomadCA.Pool(),
	}
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	good := testpki.WriteFiles(t, dir, "cli", nomadCA, nomadCA.Issue(t, "cli.global.nomad"))
	other := testpki.WriteFiles(t, dir, "other", otherCA, otherCA.Issue(t, "cli.global.nomad"))

	for _, tc := range []struct {
		name                      string
		ca, cert, key, serverName string
		want                      []string // "" when the call succeeds
	}{
		{"the right files", good.CA, good.Cert, good.Key, "", nil},
		{"the right files and the certificate's name", good.CA, good.Cert, good.Key, "client.global.nomad", nil},
		{"no client certificate", good.CA, "", "", "", []string{
			"tls: certificate required; Nomad at " + srv.Listener.Addr().String() + " asks for a client certificate " +
				"(its tls.verify_https_client) and the agent gives none: set nomad.cert_file and nomad.key_file " +
				"(NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY) to a certificate that Nomad's CA signed"}},
		{"a client certificate of another CA", good.CA, other.Cert, other.Key, "", []string{
			"tls: certificate required; Nomad at " + srv.Listener.Addr().String() + " refused the agent's client " +
				"certificate, nomad.cert_file " + other.Cert + ": check that Nomad's CA (its tls.ca_file) signed it, and its dates"}},
		{"no nomad.ca_file", "", good.Cert, good.Key, "", []string{
			"x509: certificate signed by unknown authority; the agent does not trust the certificate of Nomad at " +
				srv.Listener.Addr().String() + ": set nomad.ca_file (NOMAD_CACERT) to Nomad's CA"}},
		{"the CA of another Nomad", other.CA, good.Cert, good.Key, "", []string{
			"; the agent does not trust the certificate of Nomad at " + srv.Listener.Addr().String() +
				": check that nomad.ca_file " + other.CA + " is the CA that signed it"}},
		{"a name the certificate does not have", good.CA, good.Cert, good.Key, "server.global.nomad", []string{
			"not server.global.nomad; the agent checks the certificate of Nomad at " + srv.Listener.Addr().String() +
				" for server.global.nomad (nomad.tls_server_name, or else nomad.address's host): set nomad.tls_server_name " +
				"to a name it has (nomad tls cert create names a client's certificate client.<region>.nomad, a server's server.<region>.nomad)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := clientOf(config.Default())
			cfg.Nomad.Address = srv.URL
			cfg.Nomad.CAFile, cfg.Nomad.CertFile, cfg.Nomad.KeyFile, cfg.Nomad.TLSServerName = tc.ca, tc.cert, tc.key, tc.serverName
			start, diags := preflight.Check(cfg, preflight.Options{})
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			_, _, err := start.Nomad.Nodes().List(nil)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("list the nodes: %v; want them listed", err)
				}
				return
			}
			if err == nil {
				t.Fatal("list the nodes: no error; want the TLS failure")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("list the nodes: %v\nwant it to say %q", err, w)
				}
			}
		})
	}
}
