package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/foreshape/foreshape/internal/syncbuf"
)

// TestConsulSignalsReal runs `foreshape agent -dev` registered in the
// Consul at CONSUL_HTTP_ADDR (with CONSUL_HTTP_TOKEN under ACLs) and stops
// it as a supervisor does: SIGTERM deregisters its service (the catalog
// lists none); SIGKILL leaves it listed with its last role tag and its
// check critical; the agent started again with the same name (its API on
// another port) registers the same service ID anew, which replaces the
// stale entry: one instance, at the new port, passing. Its second service,
// NAME-metrics, comes and goes with it: SIGTERM deregisters it too.
func TestConsulSignalsReal(t *testing.T) {
	addr := os.Getenv("CONSUL_HTTP_ADDR")
	if addr == "" {
		t.Skip("CONSUL_HTTP_ADDR is not set: set it to a Consul agent's HTTP address (and CONSUL_HTTP_TOKEN under ACLs) to stop an agent registered in a real Consul with SIGTERM and SIGKILL")
	}
	token := os.Getenv("CONSUL_HTTP_TOKEN")
	consul, err := consulapi.NewClient(&consulapi.Config{Address: addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	service := "foreshape-e2e-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "name = \"sig\"\nconsul {\n  enabled = true\n  address = %q\n  token = %q\n  service_name = %q\n}\n",
		addr, token, service), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = consul.Agent().ServiceDeregister(service + "-sig")
		_ = consul.Agent().ServiceDeregister(service + "-metrics-sig")
	})
	// run starts the agent with its API on port; the process is killed
	// when the test ends if it still runs.
	run := func(port int) (*exec.Cmd, *syncbuf.Buffer) {
		out := &syncbuf.Buffer{}
		cmd := exec.Command(binary, "agent", "-dev", "-config", cfg, "-http-addr", fmt.Sprintf("127.0.0.1:%d", port))
		cmd.Stdout, cmd.Stderr = out, out
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "NOMAD_") && !strings.HasPrefix(kv, "CONSUL_HTTP_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
			if t.Failed() {
				t.Logf("agent on port %d:\n%s", port, tail(out.String(), 30))
			}
		})
		return cmd, out
	}
	type instance struct {
		port   int
		tags   string
		status string
	}
	listedAs := func(service string) []instance {
		entries, _, err := consul.Health().Service(service, "", false, nil)
		if err != nil {
			t.Logf("consul: %v", err)
			return nil
		}
		var out []instance
		for _, e := range entries {
			out = append(out, instance{e.Service.Port, strings.Join(e.Service.Tags, ","), e.Checks.AggregatedStatus()})
		}
		return out
	}
	listed := func() []instance { return listedAs(service) }
	is := func(want ...instance) func() bool {
		return func() bool {
			got := listed()
			return fmt.Sprint(got) == fmt.Sprint(want)
		}
	}
	wait := func(cmd *exec.Cmd) error {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("the agent did not exit within 20 s")
			return nil
		}
	}

	p1 := freePort(t)
	cmd, out := run(p1)
	eventually(t, 30*time.Second, "the agent passing, tagged leader", is(instance{p1, "leader", consulapi.HealthPassing}))
	eventually(t, 30*time.Second, "its metrics service passing, tagged server", func() bool {
		return fmt.Sprint(listedAs(service+"-metrics")) == fmt.Sprint([]instance{{p1, "server", consulapi.HealthPassing}})
	})
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := wait(cmd); err != nil {
		t.Errorf("SIGTERM: the agent exited with %v", err)
	}
	if got, metrics := listed(), listedAs(service+"-metrics"); len(got) != 0 || len(metrics) != 0 || !strings.Contains(out.String(), "deregistered from consul") {
		t.Errorf("after SIGTERM Consul lists %v and %v under -metrics; want none", got, metrics)
	}

	cmd, _ = run(p1)
	eventually(t, 30*time.Second, "the agent passing again", is(instance{p1, "leader", consulapi.HealthPassing}))
	_ = cmd.Process.Kill()
	_ = wait(cmd)
	eventually(t, 30*time.Second, "the killed agent listed, leader, critical", is(instance{p1, "leader", consulapi.HealthCritical}))

	p2 := freePort(t)
	cmd, _ = run(p2)
	eventually(t, 30*time.Second, "the restarted agent alone, at its new port, passing", is(instance{p2, "leader", consulapi.HealthPassing}))
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := wait(cmd); err != nil {
		t.Errorf("SIGTERM: the agent exited with %v", err)
	}
	if got := listed(); len(got) != 0 {
		t.Errorf("after the restarted agent's SIGTERM Consul lists %v; want none", got)
	}
}
