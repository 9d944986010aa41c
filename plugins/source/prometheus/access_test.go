package prometheus

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foreshape/foreshape/plugins/source"
)

// TestCredentialsStayWithPrometheus: the bearer token and the headers go
// to Prometheus's host only: a redirect to another host (a gateway sending
// the client elsewhere) carries neither.
func TestCredentialsStayWithPrometheus(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{} // server: the Authorization and X-Scope-OrgID it saw
	record := func(name string, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[name] = r.Header.Get("Authorization") + "|" + r.Header.Get("X-Scope-OrgID")
		mu.Unlock()
	}
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record("elsewhere", w, r)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[]}}`))
	}))
	t.Cleanup(elsewhere.Close)
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record("prometheus", w, r)
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(prom.Close)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"BearerToken", Config{TokenFile: secret}, "Bearer s3cret|tenant-1"},
		{"BasicAuth", Config{Username: "foreshape", PasswordFile: secret}, "Basic Zm9yZXNoYXBlOnMzY3JldA==|tenant-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Address, cfg.Queries, cfg.Headers = prom.URL, map[string]string{source.IOPS: "x"}, map[string]string{"X-Scope-OrgID": "tenant-1"}
			s, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			clear(seen)
			mu.Unlock()
			if _, err := s.Collect(context.Background(), source.Request{Now: time.Now(), Lookback: 10 * time.Second, Step: time.Second,
				Localities: []source.Locality{{Datacenter: "dc1"}}}); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if seen["prometheus"] != tc.want || seen["elsewhere"] != "|" {
				t.Errorf("Prometheus saw %q, the host it redirected to %q; want %q at Prometheus only", seen["prometheus"], seen["elsewhere"], tc.want)
			}
		})
	}
}

// TestForbiddenSaysWhatWasCarried: a 403 (a proxy that checks the token)
// says which credential the request carried, by its file, not by its
// value.
func TestForbiddenSaysWhatWasCarried(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "forbidden", http.StatusForbidden)
	}))
	t.Cleanup(srv.Close)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Address: srv.URL, Queries: map[string]string{source.IOPS: "x"}, TokenFile: token}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Collect(context.Background(), source.Request{Now: time.Now(), Lookback: 10 * time.Second, Step: time.Second,
		Localities: []source.Locality{{Datacenter: "dc1"}}})
	if err == nil || !strings.Contains(err.Error(), "answered 403 Forbidden: forbidden (the request carried the bearer token of prometheus.token_file "+token+")") ||
		strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v; want the 403 and the token's file, without the token", err)
	}
}

// TestNewRefusesWhatCannotWork: a bearer token beside basic auth, basic
// auth without its password file, and TLS beside an HTTP client.
func TestNewRefusesWhatCannotWork(t *testing.T) {
	for name, cfg := range map[string]Config{
		"token and basic auth": {TokenFile: "/t", Username: "u", PasswordFile: "/p"},
		"user alone":           {Username: "u"},
		"TLS and a client":     {TLS: &tls.Config{}, HTTPClient: http.DefaultClient},
	} {
		cfg.Address = "https://127.0.0.1:9090"
		if _, err := New(cfg, nil); err == nil || !strings.HasPrefix(err.Error(), "prometheus: ") {
			t.Errorf("%s: %v; want a refusal", name, err)
		}
	}
}
