package cluster

import (
	"context"
	"errors"
	"net"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// stoppingLogger is the logger raft and its TCP transport log to. Once the
// server stops (stopping is cancelled by Close), the ERROR lines that its
// own clean shutdown makes raft write are logged at DEBUG: the transport's
// handlers of its peers' connections, which the shutdown closes ("failed
// to decode incoming command" or "failed to flush response" with "transport
// shutdown" or "use of closed network connection"), and the old leader's
// replication meeting the term of the voter it handed leadership to ("peer
// has newer term, stopping replication"). Every other line, and these
// same lines while the server runs (a peer that breaks a connection or
// sends garbage), keep their level.
type stoppingLogger struct {
	hclog.Logger
	stopping context.Context
}

var _ hclog.Logger = stoppingLogger{}

func (l stoppingLogger) Error(msg string, args ...any) {
	l.Log(hclog.Error, msg, args...)
}

func (l stoppingLogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Error && l.stopping.Err() != nil && ownShutdown(msg, args) {
		level = hclog.Debug
	}
	l.Logger.Log(level, msg, args...)
}

func (l stoppingLogger) With(args ...any) hclog.Logger {
	return stoppingLogger{l.Logger.With(args...), l.stopping}
}

func (l stoppingLogger) Named(name string) hclog.Logger {
	return stoppingLogger{l.Logger.Named(name), l.stopping}
}

func (l stoppingLogger) ResetNamed(name string) hclog.Logger {
	return stoppingLogger{l.Logger.ResetNamed(name), l.stopping}
}

// ownShutdown reports whether raft's ERROR line msg is one a server's
// own clean shutdown causes.
func ownShutdown(msg string, args []any) bool {
	switch msg {
	case "peer has newer term, stopping replication":
		return true
	case "failed to decode incoming command", "failed to flush response":
		for i := 0; i+1 < len(args); i += 2 {
			if err, ok := args[i+1].(error); ok && args[i] == "error" {
				return errors.Is(err, raft.ErrTransportShutdown) || errors.Is(err, net.ErrClosed)
			}
		}
	}
	return false
}
