package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/plugins/target"
)

// ExitRefused is the exit status a command uses to decline an action (the
// system is at its limit, the change is not allowed): the action is then
// a refusal, not a failure, and is not retried unchanged.
const ExitRefused = 3

// inherited are the only variables of the agent's environment a command
// sees: the agent's own environment holds its tokens.
var inherited = []string{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"}

const (
	// maxOutput is how much of a command's stdout and stderr is kept (the
	// tail) for logs and errors.
	maxOutput = 4 << 10
	// waitDelay is how long output pipes may stay open after the command
	// was killed at its timeout (a child holding them).
	waitDelay = 2 * time.Second
)

// Target runs a command per scale action.
type Target struct {
	cfg *Config
	log hclog.Logger
}

var _ target.Target = (*Target)(nil)

// New builds an exec target from its decoded settings. It performs no I/O.
func New(settings any, env target.Env) (target.Target, error) {
	cfg, ok := settings.(*Config)
	if !ok || cfg == nil || len(cfg.Command) == 0 {
		return nil, fmt.Errorf("settings are %T, want a decoded *exec.Config", settings)
	}
	return &Target{cfg: cfg, log: env.Log().With("plugin", Name, "command", cfg.Command[0])}, nil
}

// Status reports that a command's count is not known to foreshape.
func (t *Target) Status(ctx context.Context) (target.Status, error) {
	return target.Status{Ready: true}, nil
}

// Scale runs the command once with the action's payload on standard input.
// Exit status 0 is success, ExitRefused a refusal, anything else a
// failure; the command is killed (with its process group) at the timeout.
func (t *Target) Scale(ctx context.Context, a target.Action) (target.Result, error) {
	if err := a.Validate(); err != nil {
		return target.Result{}, &target.Error{Plugin: Name, Kind: target.Refused, Reason: err.Error(), Err: err}
	}
	log := t.log.With(a.LogArgs()...)
	if err := ctx.Err(); err != nil {
		e := &target.Error{Plugin: Name, Kind: target.Timeout, Reason: "not started: " + err.Error(), Err: err}
		log.Warn("scale failed", "error", e)
		return target.Result{}, e
	}
	payload, err := json.Marshal(a.Payload())
	if err != nil {
		return target.Result{}, &target.Error{Plugin: Name, Kind: target.Refused, Reason: err.Error(), Err: err}
	}
	actx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	cmd := osexec.CommandContext(actx, t.cfg.Command[0], t.cfg.Command[1:]...)
	cmd.Stdin = bytes.NewReader(append(payload, '\n'))
	cmd.Env = t.environ(a)
	stdout, stderr := &tail{max: maxOutput}, &tail{max: maxOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = waitDelay
	killGroup(cmd)

	res := target.Result{Attempts: 1}
	err = cmd.Run()
	out := strings.TrimSpace(stderr.String())
	if out == "" {
		out = strings.TrimSpace(stdout.String())
	}
	if err != nil && errors.Is(err, osexec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		// The command exited 0; a process it left running in the
		// background holds its output open. Its work is done.
		res.Notes = append(res.Notes, fmt.Sprintf("%s exited 0, but a background process it started kept its output open: what was written more than %s after the exit was not read",
			t.cfg.Command[0], waitDelay))
		err = nil
	}
	if err == nil {
		res.Count = a.Count
		log.Info("scaled", "output", out)
		return res, nil
	}
	e := &target.Error{Plugin: Name, Attempts: 1, Err: err}
	var exit *osexec.ExitError
	switch {
	case ctx.Err() != nil:
		e.Kind, e.Err = target.Timeout, errors.Join(err, ctx.Err())
		e.Reason = fmt.Sprintf("%s: stopped: %v", t.cfg.Command[0], ctx.Err())
	case actx.Err() != nil:
		e.Kind, e.Reason = target.Timeout, fmt.Sprintf("%s: killed after the %s timeout", t.cfg.Command[0], t.cfg.Timeout)
	case errors.As(err, &exit) && exit.ExitCode() == ExitRefused:
		e.Kind, e.Reason = target.Refused, fmt.Sprintf("%s declined (exit %d): %s", t.cfg.Command[0], ExitRefused, out)
	case errors.As(err, &exit):
		e.Kind, e.Reason = target.Failed, fmt.Sprintf("%s: %v: %s", t.cfg.Command[0], err, out)
	default:
		e.Kind, e.Reason = target.Failed, fmt.Sprintf("%s: %v", t.cfg.Command[0], err)
	}
	log.Warn("scale failed", "error", e)
	return res, e
}

// environ is the command's environment: a few of the agent's variables,
// the policy's env, and the action as FORESHAPE_* variables.
func (t *Target) environ(a target.Action) []string {
	env := map[string]string{}
	for _, k := range inherited {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	for k, v := range t.cfg.Env {
		env[k] = v
	}
	for k, v := range map[string]string{
		"FORESHAPE_REQUEST_ID": a.ID,
		"FORESHAPE_POLICY":     a.Policy,
		"FORESHAPE_SCALE":      a.Scale,
		"FORESHAPE_LOCALITY":   a.Locality,
		"FORESHAPE_DIRECTION":  string(a.Direction),
		"FORESHAPE_AMOUNT":     strconv.Itoa(a.Amount),
		"FORESHAPE_COUNT":      strconv.Itoa(a.Count),
		"FORESHAPE_MIN":        strconv.Itoa(a.Min),
		"FORESHAPE_MAX":        strconv.Itoa(a.Max),
		"FORESHAPE_REASON":     a.Reason,
	} {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// tail keeps the last max bytes written to it.
type tail struct {
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.buf) }
