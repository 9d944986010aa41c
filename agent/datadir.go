package agent

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/config"
)

// dataDirError is err, of the agent's own use of data_dir at start
// (creating it, reading or writing its node-id), naming the setting, its
// value and where it was set, as preflight.Check's refusals do.
// preflight.Check refuses what it can tell without writing (not a
// directory, not this user's to write to, /proc); what it cannot (a disk
// that filled or failed since) shows here.
func dataDirError(cfg *config.Config, err error) error {
	from := cfg.Source("data_dir")
	if from == "default" {
		from = "the default"
	}
	return fmt.Errorf("agent: cannot use data_dir %s (set by %s): %w", cfg.DataDir, from, err)
}

// inDir reports whether path is dir or within it.
func inDir(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// termLog is the logger of the lines the leader loop logs once a term (it
// starts leading, it stops, its collection fails). While an outage of the
// data directory in which appends failed lasts, a lone server leads and
// loses its term at its first large write every heartbeat timeout, and
// those lines are DEBUG: the cluster logged the outage once.
func (a *Agent) termLog() hclog.Logger {
	if a.node != nil && a.node.AppendsFailing() {
		return debugLogger{a.log}
	}
	return a.log
}

// debugLogger logs every line at DEBUG.
type debugLogger struct{ hclog.Logger }

func (l debugLogger) Info(msg string, args ...any)  { l.Logger.Debug(msg, args...) }
func (l debugLogger) Warn(msg string, args ...any)  { l.Logger.Debug(msg, args...) }
func (l debugLogger) Error(msg string, args ...any) { l.Logger.Debug(msg, args...) }

func (l debugLogger) Log(level hclog.Level, msg string, args ...any) {
	l.Logger.Log(min(level, hclog.Debug), msg, args...)
}
