package agent

import (
	"testing"

	"github.com/foreshape/foreshape/agent/migrate"
	"github.com/foreshape/foreshape/config"
)

// TestDefaultsAgree: a default the coordinator falls back on is the one the
// configuration documents and fills in.
func TestDefaultsAgree(t *testing.T) {
	if migrate.DefaultKeepFinished != config.DefaultKeepFinished {
		t.Errorf("queue.keep_finished: coordinator %s, config %s", migrate.DefaultKeepFinished, config.DefaultKeepFinished)
	}
	if migrate.DefaultMaxQueue != config.DefaultMaxRequests {
		t.Errorf("queue.max_requests: coordinator %d, config %d", migrate.DefaultMaxQueue, config.DefaultMaxRequests)
	}
	if got := config.Default().Queue.KeepFinished; got != config.DefaultKeepFinished {
		t.Errorf("config.Default() keeps finished requests %s; want %s", got, config.DefaultKeepFinished)
	}
}
