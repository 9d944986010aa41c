package preflight_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/sim"
)

// TestNomadTokenFileIsReadForEveryRequest: with nomad.token_file every
// call to Nomad carries the token the file holds when the call is made
// (less the newline at its end), so a workload identity's token that
// Nomad writes anew is used without a restart; a file that can no longer
// be read fails the call, naming the setting, and sends nothing.
func TestNomadTokenFileIsReadForEveryRequest(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Nomad-Token"))
		mu.Unlock()
		w.Header().Set("X-Nomad-Index", "1")
		_, _ = w.Write([]byte("[]"))
	}))
	defer srv.Close()
	file := write(t, filepath.Join(t.TempDir(), "nomad_token"), "first.jwt.token\n")
	cfg := clientOf(config.Default())
	cfg.Nomad.Address, cfg.Nomad.TokenFile = srv.URL, file
	start, diags := preflight.Check(cfg, preflight.Options{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if _, _, err := start.Nomad.Nodes().List(nil); err != nil {
		t.Fatal(err)
	}
	write(t, file, "second.jwt.token")
	if _, _, err := start.Nomad.Nodes().List(nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if want := []string{"first.jwt.token", "second.jwt.token"}; strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("Nomad saw the tokens %q; want %q", seen, want)
	}
	mu.Unlock()

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	_, _, err := start.Nomad.Nodes().List(nil)
	if err == nil || !strings.Contains(err.Error(), "cannot read the Nomad token (nomad.token_file): open "+file) {
		t.Errorf("the call with the file gone: %v; want it to name nomad.token_file and the file", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Errorf("Nomad saw %d calls; want the call without a token not sent", len(seen))
	}
}

// TestNomadTokenFileRefusedAtStart: a nomad.token_file the agent cannot
// read, or that holds no token (empty, more than one line, a control
// character no request header carries), is refused
// at the start naming the setting and the file, as prometheus.token_file
// is (the same read).
func TestNomadTokenFileRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content, summary, detail string
	}{
		{"missing", "", "Cannot read nomad.token_file", "no such file or directory"},
		{"empty", "\n", "Invalid nomad.token_file", "the file is empty"},
		{"two lines", "a\nb\n", "Invalid nomad.token_file", "more than one line"},
		{"a control character", "ab\x01cd\n", "Invalid nomad.token_file", "control character (U+0001 at byte 2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if tc.content != "" {
				write(t, file, tc.content)
			}
			cfg := clientOf(config.Default())
			cfg.Nomad.TokenFile = file
			_, diags := preflight.Check(cfg, preflight.Options{})
			if len(diags) != 1 || diags[0].Summary != tc.summary || !strings.Contains(diags[0].Detail, file) ||
				!strings.Contains(diags[0].Detail, tc.detail) {
				t.Errorf("%s; want one %q naming %s and saying %q", diags.Error(), tc.summary, file, tc.detail)
			}
		})
	}
}

// TestNomadRefusalNamesTheTokenFile: a call Nomad refuses when the token
// came from nomad.token_file names that setting and its file, and the
// policy attached to the agent's job, not nomad.token.
func TestNomadRefusalNamesTheTokenFile(t *testing.T) {
	sc := sim.DefaultScenario()
	sc.Tokens = []string{"s3cret"}
	c, err := sim.New(sc, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	file := write(t, filepath.Join(t.TempDir(), "nomad_token"), "wrong\n")
	cfg := clientOf(config.Default())
	cfg.Nomad.Address, cfg.Nomad.TokenFile = srv.URL, file
	start, diags := preflight.Check(cfg, preflight.Options{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	_, _, err = start.Nomad.Nodes().List(nil)
	want := "Permission denied; Nomad refused GET /v1/nodes with the agent's token, read from nomad.token_file " + file +
		": check nomad.token_file, and that the ACL policy of that token (for a workload identity, the policy attached " +
		"to the agent's job) grants what deploy/foreshape-acl.hcl does"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "nomad.token or") {
		t.Errorf("%v\nwant it to say %q", err, want)
	}
	if !preflight.NomadRefused(err) {
		t.Errorf("NomadRefused(%v) false; want true", err)
	}
	write(t, file, "s3cret\n")
	if _, _, err := start.Nomad.Nodes().List(nil); err != nil {
		t.Errorf("with the file mended: %v", err)
	}
}

// TestNomadCertificateDates: nomad.cert_file out of its dates at
// Options.Now is warned of, naming the setting and the file, as
// tls.cert_file and prometheus.cert_file are (a Nomad that requires a
// client certificate refuses it); in its dates, or without a wall clock,
// it is not.
func TestNomadCertificateDates(t *testing.T) {
	clientCertDates(t, "nomad", "Nomad that requires a client certificate", func(c *config.Config, cert, key string) {
		c.Nomad.Address = "https://nomad.internal:4646"
		c.Nomad.CertFile, c.Nomad.KeyFile = cert, key
	})
}

// TestNomadOverTheTaskAPISocket: nomad.address unix://PATH, as a Nomad
// task's Task API socket (${NOMAD_SECRETS_DIR}/api.sock), carries every
// call over that socket, with the token of nomad.token_file.
func TestNomadOverTheTaskAPISocket(t *testing.T) {
	tokens := make(chan string, 1)
	dir, sock := serveSocket(t, func(w http.ResponseWriter, r *http.Request) {
		tokens <- r.Header.Get("X-Nomad-Token")
		w.Header().Set("X-Nomad-Index", "1")
		_, _ = w.Write([]byte(`[{"ID": "n1", "Name": "over-the-socket"}]`))
	})
	cfg := clientOf(config.Default())
	cfg.Nomad.Address, cfg.Nomad.TokenFile = "unix://"+sock, write(t, filepath.Join(dir, "nomad_token"), "identity.jwt\n")
	start, diags := preflight.Check(cfg, preflight.Options{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	nodes, _, err := start.Nomad.Nodes().List(nil)
	if err != nil || len(nodes) != 1 || nodes[0].Name != "over-the-socket" {
		t.Fatalf("nodes over %s: %v, %v", sock, nodes, err)
	}
	if tok := <-tokens; tok != "identity.jwt" {
		t.Errorf("the call carried the token %q; want the file's", tok)
	}
}

// TestTaskAPIRefusalsNameTheCall: the Task API's socket answers a call
// without a token 401 "Unauthorized", a token Nomad does not know 403
// "Forbidden", and a secret that is no token (or a workload identity whose
// allocation is gone) 500 "Server error authenticating request" (measured
// on Nomad 2.0.6-dev, before the call's own check, which answers 403
// "Permission denied" as Nomad's HTTP API does). Each is explained as
// Nomad's HTTP API's refusals are, naming the call and what to check.
func TestTaskAPIRefusalsNameTheCall(t *testing.T) {
	// As the Task API's middleware answers (nomad command/agent/http.go).
	dir, sock := serveSocket(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		switch r.Header.Get("X-Nomad-Token") {
		case "":
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte("Unauthorized"))
		case "0b6e9d21-8c4f-4a37-b1d5-3e9f7a2c6d80":
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte("Forbidden"))
		default:
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("Server error authenticating request\n"))
		}
	})
	file := write(t, filepath.Join(dir, "nomad_token"), "x")
	for _, tc := range []struct {
		name, token, tokenFile, want string
	}{
		{"no token", "", "", "401 (Unauthorized; Nomad refused GET /v1/nodes, which the agent made without a token: set nomad.token or NOMAD_TOKEN (or nomad.token_file)"},
		{"unknown token", "0b6e9d21-8c4f-4a37-b1d5-3e9f7a2c6d80", "", "403 (Forbidden; Nomad refused GET /v1/nodes with the agent's token: check nomad.token or NOMAD_TOKEN"},
		{"stale identity", "", "eyJh.eyJu.c2ln", "500 (Server error authenticating request; Nomad refused GET /v1/nodes with the agent's token, read from nomad.token_file " + file + ": check nomad.token_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := clientOf(config.Default())
			cfg.Nomad.Address, cfg.Nomad.Token = "unix://"+sock, config.Secret(tc.token)
			if tc.tokenFile != "" {
				write(t, file, tc.tokenFile)
				cfg.Nomad.TokenFile = file
			}
			start, diags := preflight.Check(cfg, preflight.Options{})
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			_, _, err := start.Nomad.Nodes().List(nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v\nwant it to say %q", err, tc.want)
			}
			if !preflight.NomadRefused(err) {
				t.Errorf("NomadRefused(%v) false; want true", err)
			}
		})
	}
}

// serveSocket serves h on api.sock in a new directory, as a Nomad task's
// Task API socket, and returns the directory and the socket's path.
func serveSocket(t *testing.T, h http.HandlerFunc) (dir, sock string) {
	t.Helper()
	dir = t.TempDir()
	sock = filepath.Join(dir, "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return dir, sock
}
