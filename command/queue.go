package command

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/cli"

	"github.com/foreshape/foreshape/agent/api"
)

func init() {
	group("queue", "Inspect and edit the migration queue", `
Usage: foreshape queue <subcommand> [options] [args]

  Inspect and edit the migration queue of a running agent: the requests to
  move an allocation, a job's task group or a whole node to another
  locality, in the order the agent will run them.

Example:

  $ foreshape queue submit -node dc1-rack-a-1 -target dc2 -reason "rack a maintenance"
`)
	register("queue list", func(m Meta) cli.Command { return &QueueListCommand{Meta: m} })
	register("queue show", func(m Meta) cli.Command { return &QueueShowCommand{Meta: m} })
	register("queue submit", func(m Meta) cli.Command { return &QueueSubmitCommand{Meta: m} })
	register("queue cancel", func(m Meta) cli.Command { return &QueueCancelCommand{Meta: m} })
	register("queue priority", func(m Meta) cli.Command { return &QueuePriorityCommand{Meta: m} })
	register("queue pause", func(m Meta) cli.Command { return &QueuePauseCommand{Meta: m, pause: true} })
	register("queue resume", func(m Meta) cli.Command { return &QueuePauseCommand{Meta: m} })
	register("queue watch", func(m Meta) cli.Command { return &QueueWatchCommand{Meta: m} })
}

// oneID checks that a command got exactly one ID after its options, and
// that it is not empty (a script's unset variable), which the agent would
// answer as a path it does not know.
func (m *Meta) oneID(cmd string, args []string) (string, int, bool) {
	switch {
	case len(args) == 1 && strings.TrimSpace(args[0]) == "":
		return "", m.UsageError(cmd, "the request ID is empty: "+cmd+" takes a request's ID, such as mr-4 (foreshape queue list shows them)"), false
	case len(args) == 1 && !strings.HasPrefix(args[0], "-"):
		return args[0], ExitOK, true
	case len(args) > 1 && strings.HasPrefix(args[1], "-"):
		return "", m.UsageError(cmd, fmt.Sprintf("options come before the request ID: foreshape %s %s %s", cmd, strings.Join(args[1:], " "), args[0])), false
	}
	return "", m.UsageError(cmd, cmd+" takes exactly one request ID, after the options"), false
}

// QueueListCommand lists migration requests.
type QueueListCommand struct{ Meta }

func (c *QueueListCommand) Synopsis() string { return "List migration requests" }

func (c *QueueListCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape queue list [options]

  Lists the migration requests the agent knows, in the order it runs them:
  running requests first, then queued ones by score, highest first, then
  finished ones, newest first. For each: what moves, from which locality
  to which, its state, priority, score, estimated duration and why it
  exists or waits.
  A request submitted since the leader's last act pass has score 0.00
  until the next pass scores it.
  A request that finished stays listed at least queue.keep_finished
  (default 1d) after it finished; then the leader forgets it once nothing
  reads it any more (docs/architecture.md says when).

Options:

  -state=LIST      Only requests in these states, comma-separated: pending,
                   waiting, reserving, running, done, failed, cancelled.
  -locality=PATH   Only requests from or to a locality within this one:
                   DATACENTER[/NODE_POOL[/NODE_CLASS]], "*" for any part.
                   dc1 holds dc1/*/web (node class web); dc1/web is node
                   pool web. One that holds none of the localities the
                   agent knows (its policies', its requests') lists
                   nothing and says so on stderr, naming them.
` + clientFlagsHelp + `

Example:

  $ foreshape queue list -state pending,waiting,running
  Queue: running
  ID    State    Resource      Source  Target  Priority  Score  Estimate  Reason
  mr-3  running  node/dc1-a-1  dc1     dc2     70        2.41   4m0s      rack a maintenance
`)
}

func (c *QueueListCommand) Run(args []string) int {
	var cf clientFlags
	fs := c.FlagSet("queue list", c.Help)
	cf.register(fs)
	states := fs.String("state", "", "states")
	locality := fs.String("locality", "", "locality")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.UsageError("queue list", "queue list takes no arguments")
	}
	opts := &api.QueueOptions{Locality: *locality}
	var err error
	if opts.States, err = parseStates(*states); err != nil {
		return c.UsageError("queue list", err.Error())
	}
	if err := api.CheckLocality(*locality); err != nil {
		return c.UsageError("queue list", "-"+err.Error())
	}
	q, qm, err := cf.client().QueueWithMeta(c.Ctx, opts)
	if err != nil {
		return c.apiError(err)
	}
	defer c.warnNoLeader(&cf, qm)
	if cf.json {
		return c.printJSON(q)
	}
	fmt.Fprint(c.Out, renderQueue(q))
	if len(q.Requests) == 0 {
		noteLocality(c.Ctx, c.Err, cf.client(), *locality, "request", func() ([]string, error) {
			all, err := cf.client().Queue(c.Ctx, nil)
			var out []string
			for _, r := range all.Requests {
				out = append(out, r.Source, r.Target)
			}
			return out, err
		})
	}
	return ExitOK
}

// parseStates reads -state: request states, comma-separated.
func parseStates(v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if !contains(api.States, s) {
			return nil, fmt.Errorf("-state: %q is not one of %s", s, strings.Join(api.States, ", "))
		}
		out = append(out, s)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// renderQueue prints the queue as a table.
func renderQueue(q api.Queue) string {
	var b strings.Builder
	if q.Paused {
		b.WriteString("Queue: paused")
		if q.PausedBy != "" {
			b.WriteString(" by " + q.PausedBy)
		}
		if q.PausedAt != nil {
			b.WriteString(" at " + q.PausedAt.UTC().Format(time.RFC3339))
		}
		b.WriteString(" (running moves continue; no new move starts)\n")
	} else {
		b.WriteString("Queue: running\n")
	}
	if len(q.Requests) == 0 {
		b.WriteString("No migration requests.\n")
		return b.String()
	}
	w := newTable(&b)
	fmt.Fprintln(w, "ID\tState\tResource\tSource\tTarget\tPriority\tScore\tEstimate\tReason")
	for _, r := range q.Requests {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%.2f\t%s\t%s\n", cell(r.ID), cell(r.State), cell(r.Resource), cell(r.Source), cell(r.Target),
			r.Priority, r.Score, seconds(r.EstimatedDurationS), oneLine(r.Reason))
	}
	w.Flush()
	return b.String()
}

func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

func formatTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// QueueShowCommand shows one migration request.
type QueueShowCommand struct{ Meta }

func (c *QueueShowCommand) Synopsis() string { return "Show one migration request" }

func (c *QueueShowCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape queue show [options] ID

  Shows one migration request: what moves where, its state and why, its
  priority and score, and when it was created, started and finished with
  the estimated and actual duration. A request the leader has forgotten
  (finished at least queue.keep_finished ago) is not found, as one that
  never existed.

Options:
` + clientFlagsHelp + `

Example:

  $ foreshape queue show mr-3
`)
}

func (c *QueueShowCommand) Run(args []string) int {
	var cf clientFlags
	fs := c.FlagSet("queue show", c.Help)
	cf.register(fs)
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	id, code, ok := c.oneID("queue show", fs.Args())
	if !ok {
		return code
	}
	r, qm, err := cf.client().RequestWithMeta(c.Ctx, id)
	if err != nil {
		return c.apiError(err)
	}
	defer c.warnNoLeader(&cf, qm)
	if cf.json {
		return c.printJSON(r)
	}
	c.printRequest(r)
	return ExitOK
}

func (m *Meta) printRequest(r api.MigrationRequest) {
	w := m.table()
	fmt.Fprintf(w, "ID\t%s\n", cell(r.ID))
	fmt.Fprintf(w, "Resource\t%s\n", cell(r.Resource))
	fmt.Fprintf(w, "Source\t%s\n", cell(r.Source))
	fmt.Fprintf(w, "Target\t%s\n", cell(r.Target))
	fmt.Fprintf(w, "State\t%s\n", cell(r.State))
	fmt.Fprintf(w, "Reason\t%s\n", oneLine(r.Reason))
	fmt.Fprintf(w, "Priority\t%d\n", r.Priority)
	fmt.Fprintf(w, "Score\t%.2f\n", r.Score)
	fmt.Fprintf(w, "Created\t%s\n", r.Created.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "Started\t%s\n", formatTime(r.Started))
	fmt.Fprintf(w, "Finished\t%s\n", formatTime(r.Finished))
	took := "-"
	if r.Started != nil && r.Finished != nil {
		took = r.Finished.Sub(*r.Started).Round(time.Second).String()
	}
	fmt.Fprintf(w, "Duration\t%s (estimated %s)\n", took, seconds(r.EstimatedDurationS))
	w.Flush()
}

// QueueSubmitCommand queues a migration request.
type QueueSubmitCommand struct{ Meta }

func (c *QueueSubmitCommand) Synopsis() string { return "Queue a migration request" }

func (c *QueueSubmitCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape queue submit [options] -target PATH (-alloc ID | -job JOB -group GROUP | -node NODE)

  Asks the agent to move an allocation, a job's task group or a whole node
  to another locality. The agent checks the request first and refuses it,
  changing nothing, when the allocation, job or node is unknown, the
  allocation or job is a system or sysbatch job's (Nomad runs those on
  every eligible node) or a placeholder, the target is unknown, equal to
  the source or forbidden by the job's constraints,
  the resource is already queued (the error names that request), or the
  queue is full; also when Nomad refuses the agent's own Nomad token a call
  the check needs (the agent answers 502 naming the call). It prints the
  new request's ID.

  Nomad places each replacement, among every node the job allows, the
  source's included. foreshape leans it toward the target by the source
  policy's migrate.strategy: "reschedule" (the default) hands over room a
  placeholder held for it in the target, which the target's policy holds
  only with reserve { enabled = true }; "affinity" gives the job an
  affinity for the target. Neither binds Nomad: a replacement may still
  land outside the target (more likely where the source keeps room). The
  request still ends done, its reason (queue show) names each allocation
  that landed outside the target, and the agent logs a warning.

Options:

  -alloc=ID       Move one allocation.
  -job=JOB        Move a job's task group (with -group).
  -group=GROUP    The task group of -job.
  -node=NODE      Move every allocation off a node (by name or ID). The
                  node is out of scheduling while its work moves and
                  stays out once emptied, as after a Nomad drain: make
                  it eligible again ('nomad node eligibility -enable')
                  when it may take work.
  -target=PATH    The locality to move to (dc2, dc2/web). Required.
  -priority=N     1–100, higher first. Default: the agent's choice (from
                  the job's priority).
  -reason=TEXT    Why, for the queue and the decision log; at most 512
                  bytes.
` + clientFlagsHelp + `

Example:

  $ foreshape queue submit -job web -group frontend -target dc2 -priority 80
  Queued mr-4
`)
}

func (c *QueueSubmitCommand) Run(args []string) int {
	var cf clientFlags
	var s api.Submission
	fs := c.FlagSet("queue submit", c.Help)
	cf.register(fs)
	fs.StringVar(&s.Allocation, "alloc", "", "allocation")
	fs.StringVar(&s.Job, "job", "", "job")
	fs.StringVar(&s.Group, "group", "", "group")
	fs.StringVar(&s.Node, "node", "", "node")
	fs.StringVar(&s.Target, "target", "", "target")
	fs.IntVar(&s.Priority, "priority", 0, "priority")
	fs.StringVar(&s.Reason, "reason", "", "reason")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.UsageError("queue submit", "queue submit takes no arguments; name what to move with -alloc, -job and -group, or -node")
	}
	var empty []string
	fs.Visit(func(f *flag.Flag) {
		if f.Value.String() == "" && slices.Contains([]string{"alloc", "job", "group", "node", "target"}, f.Name) {
			empty = append(empty, "-"+f.Name)
		}
	})
	if len(empty) > 0 {
		return c.UsageError("queue submit", empty[0]+" is empty")
	}
	if err := s.Check(); err != nil {
		var ie *api.InvalidError
		if asInvalid(err, &ie) {
			flag := map[string]string{"allocation": "-alloc"}[ie.Field]
			if flag == "" {
				flag = "-" + ie.Field
			}
			msg := strings.NewReplacer(`"allocation"`, "-alloc", `"job"`, "-job", `"group"`, "-group", `"node"`, "-node").Replace(ie.Reason)
			return c.UsageError("queue submit", flag+": "+msg)
		}
		return c.UsageError("queue submit", err.Error())
	}
	id, err := cf.client().Submit(c.Ctx, s)
	if err != nil {
		return c.writeError(err, "The agent may have queued it before its answer was lost: 'foreshape queue list' shows whether it did "+
			"(a resource already queued is refused, naming its request).")
	}
	if cf.json {
		return c.printJSON(api.Submitted{ID: id})
	}
	fmt.Fprintf(c.Out, "Queued %s\n", id)
	return ExitOK
}

func asInvalid(err error, out **api.InvalidError) bool { return errors.As(err, out) }

// newTable returns a tab writer over w laid out like Meta.table.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// QueueCancelCommand cancels a migration request.
type QueueCancelCommand struct{ Meta }

func (c *QueueCancelCommand) Synopsis() string { return "Cancel a migration request" }

func (c *QueueCancelCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape queue cancel [options] ID

  Cancels a migration request that has not started (pending, waiting or
  reserving); the agent releases its reservation at its next cycle. A
  running move cannot be cancelled (its allocation has been stopped
  already), nor can a request that has finished: the agent answers 409.

Options:
` + clientFlagsHelp + `

Example:

  $ foreshape queue cancel mr-4
  Cancelled mr-4
`)
}

func (c *QueueCancelCommand) Run(args []string) int {
	var cf clientFlags
	fs := c.FlagSet("queue cancel", c.Help)
	cf.register(fs)
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	id, code, ok := c.oneID("queue cancel", fs.Args())
	if !ok {
		return code
	}
	r, err := cf.client().Cancel(c.Ctx, id)
	if err != nil {
		return c.writeError(err, fmt.Sprintf("The agent may have cancelled %s before its answer was lost: 'foreshape queue show %s' shows whether it did.", cell(id), cell(id)))
	}
	if cf.json {
		return c.printJSON(r)
	}
	fmt.Fprintf(c.Out, "Cancelled %s\n", r.ID)
	return ExitOK
}

// QueuePriorityCommand sets a queued request's priority.
type QueuePriorityCommand struct{ Meta }

func (c *QueuePriorityCommand) Synopsis() string { return "Set a queued migration request's priority" }

func (c *QueuePriorityCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape queue priority [options] ID PRIORITY

  Sets the priority (1 to 100) of a migration request that has not
  started (pending, waiting or reserving), to move it up or down the
  queue. The leader scores it again at its next act pass: the score's
  critical term counts the higher of the request's priority and the
  priorities of the jobs it moves (policies.md, migrate.priority), so a
  priority below its jobs' does not lower it. A request that runs or has
  finished cannot be changed: the agent answers 409. The change is
  recorded as a decision of kind priority.

Options:
` + clientFlagsHelp + `

Example:

  $ foreshape queue priority mr-4 90
  Priority of mr-4 set to 90; the leader scores it again at its next pass.
`)
}

func (c *QueuePriorityCommand) Run(args []string) int {
	var cf clientFlags
	fs := c.FlagSet("queue priority", c.Help)
	cf.register(fs)
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	rest := fs.Args()
	if len(rest) != 2 {
		if len(rest) > 2 && strings.HasPrefix(rest[2], "-") {
			return c.UsageError("queue priority", fmt.Sprintf("options come before the request ID: foreshape queue priority %s %s %s", strings.Join(rest[2:], " "), rest[0], rest[1]))
		}
		return c.UsageError("queue priority", "queue priority takes a request ID and a priority (1 to 100), after the options, such as: foreshape queue priority mr-4 90")
	}
	id, code, ok := c.oneID("queue priority", rest[:1])
	if !ok {
		return code
	}
	prio, err := strconv.Atoi(rest[1])
	if err != nil || prio < 1 || prio > 100 {
		return c.UsageError("queue priority", fmt.Sprintf("the priority %q is not a whole number from 1 to 100", rest[1]))
	}
	r, err := cf.client().SetPriority(c.Ctx, id, prio)
	if err != nil {
		return c.writeError(err, fmt.Sprintf("The agent may have set it before its answer was lost: 'foreshape queue show %s' shows its priority.", cell(id)))
	}
	if cf.json {
		return c.printJSON(r)
	}
	fmt.Fprintf(c.Out, "Priority of %s set to %d; the leader scores it again at its next pass.\n", r.ID, r.Priority)
	return ExitOK
}

// QueuePauseCommand pauses or resumes the queue.
type QueuePauseCommand struct {
	Meta
	pause bool
}

func (c *QueuePauseCommand) name() string {
	if c.pause {
		return "queue pause"
	}
	return "queue resume"
}

func (c *QueuePauseCommand) Synopsis() string {
	if c.pause {
		return "Start no new moves (running moves continue)"
	}
	return "Start moves again"
}

func (c *QueuePauseCommand) Help() string {
	if c.pause {
		return strings.TrimSpace(`
Usage: foreshape queue pause [options]

  Pauses the migration queue: the agent starts no new move until the queue
  is resumed. Moves already running continue and are followed to the end;
  requests can still be submitted and cancelled. Pausing a paused queue
  does nothing. When another change (an operator, the dashboard) resumes
  the queue before the agent answers, pause says so and exits 1.

Options:
` + clientFlagsHelp + `

Example:

  $ foreshape queue pause
  Queue paused: running moves continue, no new move starts.
`)
	}
	return strings.TrimSpace(`
Usage: foreshape queue resume [options]

  Resumes a paused migration queue: the agent starts moves again, in score
  order, under its per-locality limits. When another change (an operator,
  the dashboard) pauses the queue before the agent answers, resume says so
  and exits 1.

Options:
` + clientFlagsHelp + `

Example:

  $ foreshape queue resume
  Queue resumed.
`)
}

func (c *QueuePauseCommand) Run(args []string) int {
	var cf clientFlags
	fs := c.FlagSet(c.name(), c.Help)
	cf.register(fs)
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.UsageError(c.name(), c.name()+" takes no arguments")
	}
	q, err := cf.client().Pause(c.Ctx, c.pause)
	if err != nil {
		what := "resumed"
		if c.pause {
			what = "paused"
		}
		return c.writeError(err, "The agent may have "+what+" the queue before its answer was lost: 'foreshape queue list' shows whether it did.")
	}
	if q.Paused != c.pause {
		// Another change (an operator, the dashboard) undid this one
		// between its apply and the agent's answer: the queue is not
		// as asked.
		if cf.json {
			c.printJSON(q)
		}
		if c.pause {
			c.UI.Error("error: the queue was paused, but it runs now: another change (an operator, the dashboard) resumed it before the agent answered")
		} else {
			c.UI.Error("error: the queue was resumed, but it is paused now: another change (an operator, the dashboard) paused it before the agent answered")
		}
		return ExitInvalid
	}
	if cf.json {
		return c.printJSON(q)
	}
	if q.Paused {
		fmt.Fprintln(c.Out, "Queue paused: running moves continue, no new move starts.")
	} else {
		fmt.Fprintln(c.Out, "Queue resumed.")
	}
	return ExitOK
}

// requestLine is one request as a line of `queue watch` output.
func requestLine(r api.MigrationRequest) string {
	line := fmt.Sprintf("%s %s %s %s -> %s priority %d score %.2f", cell(r.ID), cell(r.State), cell(r.Resource), cell(r.Source), cell(r.Target),
		r.Priority, r.Score)
	if r.Reason != "" {
		line += ": " + oneLine(r.Reason)
	}
	return line
}
