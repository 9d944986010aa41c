package agent

import "github.com/hashicorp/go-hclog"

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
