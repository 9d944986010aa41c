package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/foreshape/foreshape/config"
)

// fakeConsul records the service registrations the agent sends to Consul's
// agent endpoints.
type fakeConsul struct {
	mu           sync.Mutex
	registered   []consulapi.AgentServiceRegistration
	deregistered []string
	tokens       []string
}

func (f *fakeConsul) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = append(f.tokens, r.Header.Get("X-Consul-Token"))
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/v1/agent/service/register":
		var reg consulapi.AgentServiceRegistration
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &reg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.registered = append(f.registered, reg)
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/agent/service/deregister/"):
		f.deregistered = append(f.deregistered, strings.TrimPrefix(r.URL.Path, "/v1/agent/service/deregister/"))
	default:
		http.NotFound(w, r)
	}
}

func TestConsulRegistration(t *testing.T) {
	fake := &fakeConsul{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	cfg := config.DevDefault()
	cfg.Name = "agent-7"
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = "http://127.0.0.1:1"
	cfg.Consul = config.Consul{Enabled: true, Address: srv.URL, Token: "c0nsul", ServiceName: "foreshape", Tags: []string{"dev"}}
	a, err := New(cfg, Options{Logger: testLogger(t), Policies: devPolicies(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	eventually(t, 10*time.Second, "the registration", func() bool {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		return len(fake.registered) == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	a.Close()
	fake.mu.Lock()
	defer fake.mu.Unlock()
	reg := fake.registered[0]
	if reg.ID != "foreshape-agent-7" || reg.Name != "foreshape" || reg.Port == 0 || len(reg.Tags) != 1 {
		t.Errorf("registration = %+v", reg)
	}
	if reg.Check == nil || !strings.HasSuffix(reg.Check.HTTP, "/v1/health") || !strings.HasPrefix(reg.Check.HTTP, "http://127.0.0.1:") {
		t.Errorf("check = %+v", reg.Check)
	}
	if len(fake.deregistered) != 1 || fake.deregistered[0] != "foreshape-agent-7" {
		t.Errorf("deregistered = %v, want the service on shutdown", fake.deregistered)
	}
	for _, tok := range fake.tokens {
		if tok != "c0nsul" {
			t.Errorf("a request carried token %q, want the configured one", tok)
		}
	}
}

// TestConsulRegistrationReal registers against the Consul at
// CONSUL_HTTP_ADDR, when an operator sets it.
func TestConsulRegistrationReal(t *testing.T) {
	addr := os.Getenv("CONSUL_HTTP_ADDR")
	if addr == "" {
		t.Skip("CONSUL_HTTP_ADDR is not set")
	}
	reg, err := newConsulRegistration(config.Consul{Enabled: true, Address: addr, Token: config.Secret(os.Getenv("CONSUL_HTTP_TOKEN")), ServiceName: "foreshape-test"},
		"e2e", "127.0.0.1:7575", false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := reg.register(ctx, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	services, err := reg.client.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := services["foreshape-test-e2e"]; !ok {
		t.Errorf("service not registered: %v", services)
	}
	if err := reg.deregister(ctx); err != nil {
		t.Fatal(err)
	}
}
