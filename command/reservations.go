package command

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/cli"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/policies"
)

func init() {
	register("reservations", func(m Meta) cli.Command { return &ReservationsCommand{Meta: m} })
	register("decisions", func(m Meta) cli.Command { return &DecisionsCommand{Meta: m} })
}

// ReservationsCommand lists capacity reservations.
type ReservationsCommand struct{ Meta }

func (c *ReservationsCommand) Synopsis() string {
	return "List capacity held by placeholder jobs"
}

func (c *ReservationsCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape reservations [options]

  Lists the capacity the agent holds in migrations' targets, ahead of the
  moves, with low-priority placeholder jobs: for which request and policy,
  in which locality, how much CPU (MHz), memory (MiB) and IOPS, from when
  until when (its expiry, which no placeholder outlives, unless its request
  ends first; once released, when it was), the placeholder job and its
  state: planned (its placeholder job not registered yet), placed
  (registered, and some of its allocations not placed on a node yet: Nomad
  found no room for them so far, or the leader has not looked since),
  held (every placeholder allocation placed: the room is held),
  handing_over (the request's move runs and takes the room over) or
  released.

Options:

  -policy=NAME     Only this policy's reservations.
  -locality=PATH   Only reservations in a locality within this one (dc2
                   holds dc2/*/web); one that holds no locality the agent
                   knows says so on stderr, naming them.
  -state=STATE     Only reservations in this state (one of those above).
  -request=ID      Only the reservations of this migration request.
` + clientFlagsHelp + `

Example:

  $ foreshape reservations -locality dc2
  ID    Request  Policy  Locality  CPU   Memory  IOPS  From                  Until                 Job                     State
  rs-1  mr-3     web     dc2       4000  8192    0     2026-01-05T11:50:00Z  2026-01-05T12:50:00Z  foreshape-reserve-rs-1  held
`)
}

func (c *ReservationsCommand) Run(args []string) int {
	var cf clientFlags
	var o api.ReservationOptions
	fs := c.FlagSet("reservations", c.Help)
	cf.register(fs)
	fs.StringVar(&o.Policy, "policy", "", "policy")
	fs.StringVar(&o.Locality, "locality", "", "locality")
	fs.StringVar(&o.State, "state", "", "state")
	fs.StringVar(&o.Request, "request", "", "request")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.UsageError("reservations", "reservations takes no arguments")
	}
	if err := api.CheckLocality(o.Locality); err != nil {
		return c.UsageError("reservations", "-"+err.Error())
	}
	if o.State != "" && !slices.Contains(api.ReservationStates, o.State) {
		return c.UsageError("reservations", fmt.Sprintf("-state: %q is not one of %s", o.State, strings.Join(api.ReservationStates, ", ")))
	}
	rs, qm, err := cf.client().ReservationsWithMeta(c.Ctx, &o)
	if err != nil {
		return c.apiError(err)
	}
	defer c.warnNoLeader(&cf, qm)
	if cf.json {
		return c.printJSON(api.Reservations{Reservations: nonNilList(rs)})
	}
	if len(rs) == 0 {
		fmt.Fprintln(c.Out, "No reservations.")
		notePolicy(c.Ctx, c.Err, cf.client(), o.Policy)
		noteLocality(c.Ctx, c.Err, cf.client(), o.Locality, "reservation", func() ([]string, error) {
			all, err := cf.client().Reservations(c.Ctx, nil)
			var out []string
			for _, r := range all {
				out = append(out, r.Locality)
			}
			return out, err
		})
		return ExitOK
	}
	w := c.table()
	fmt.Fprintln(w, "ID\tRequest\tPolicy\tLocality\tCPU\tMemory\tIOPS\tFrom\tUntil\tJob\tState")
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", cell(r.ID), dash(r.Request), cell(r.Policy), cell(r.Locality),
			r.CPU, r.Memory, iops(r.IOPS), r.From.UTC().Format(time.RFC3339), r.Until.UTC().Format(time.RFC3339), dash(r.Job), cell(r.State))
	}
	w.Flush()
	return ExitOK
}

// iops writes an IOPS figure in full, to two decimals at most: 12000, not
// %g's 1.2e+04.
func iops(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

// dash is a table cell of text from outside the CLI, "-" when empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return cell(s)
}

func nonNilList[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// DecisionsCommand lists the decision log.
type DecisionsCommand struct{ Meta }

func (c *DecisionsCommand) Synopsis() string {
	return "List the shaper's and coordinator's recent decisions and why"
}

func (c *DecisionsCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape decisions [options]

  Lists, newest first, what the agent decided and why, with the numbers
  behind it: requests queued, reservations placed, extended and released,
  placeholders reaped, scale actions, requests held back, moves started and
  finished, cancellations. The agent keeps a bounded log of the
  most recent decisions.

Options:

  -policy=NAME     Only this policy's decisions.
  -locality=PATH   Only decisions about a locality within this one (dc1
                   holds dc1/*/web); one that holds no locality the agent
                   knows says so on stderr, naming them.
  -kind=KIND       Only decisions of this kind (submit, reserve, extend,
                   release, reap, scale, wait, start, done, cancel;
                   priority when an operator sets a queued request's
                   priority, hold when a node is taken or kept out of
                   scheduling (a queued whole-node request's, a spread's,
                   an operator's cordon left as it is) or cannot be given
                   back, restore when one is given back, reconcile
                   when a new leader settles what the last one left open,
                   retry when a move is queued again, fail when it failed
                   for good).
  -request=ID      Only decisions about this migration request.
  -since=WHEN      Only decisions at or after WHEN: an RFC 3339 time
                   (2026-01-05T09:00:00Z) or a duration (30m) back from
                   the agent's data time, which decisions are stamped
                   with (the wall clock, except under a simulator or a
                   replay).
  -limit=N         At most N decisions. Default: 50; 0 for all.
` + clientFlagsHelp + `

Example:

  $ foreshape decisions -policy web -limit 2
  Time                  Policy  Kind     Locality  Request  Reason
  2026-01-05T11:50:00Z  web     reserve  dc2       mr-3     reserve 4000 MHz / 8192 MiB in dc2 from 12:05 for mr-3: p90 cpu 62% + incoming 9% + held 0% stays under the 80% line until 12:50 (peak at 12:20)
  2026-01-05T11:49:00Z  web     wait     dc1       mr-4     wait: target congested: p90 cpu demand 78% + incoming 9% + held 0% would cross the 80% line in dc2 at 12:10
`)
}

func (c *DecisionsCommand) Run(args []string) int {
	var cf clientFlags
	var f api.DecisionFilter
	fs := c.FlagSet("decisions", c.Help)
	cf.register(fs)
	fs.StringVar(&f.Policy, "policy", "", "policy")
	fs.StringVar(&f.Locality, "locality", "", "locality")
	fs.StringVar(&f.Kind, "kind", "", "kind")
	fs.StringVar(&f.Request, "request", "", "request")
	since := fs.String("since", "", "since")
	fs.IntVar(&f.Limit, "limit", 50, "limit")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.UsageError("decisions", "decisions takes no arguments")
	}
	if f.Limit < 0 {
		return c.UsageError("decisions", "-limit must not be negative")
	}
	if err := api.CheckLocality(f.Locality); err != nil {
		return c.UsageError("decisions", "-"+err.Error())
	}
	if f.Kind != "" && !slices.Contains(api.DecisionKinds, f.Kind) {
		return c.UsageError("decisions", fmt.Sprintf("-kind: %q is not one of %s", f.Kind, strings.Join(api.DecisionKinds, ", ")))
	}
	if *since != "" {
		if t, err := time.Parse(time.RFC3339, *since); err == nil {
			f.Since = t
		} else if d, err := time.ParseDuration(*since); err == nil && d > 0 {
			f.Since = c.dataTime(cf.client()).Add(-d)
		} else {
			return c.UsageError("decisions", fmt.Sprintf("-since: %q is neither an RFC 3339 time nor a positive duration", *since))
		}
	}
	ds, qm, err := cf.client().DecisionsWithMeta(c.Ctx, f)
	if err != nil {
		return c.apiError(err)
	}
	defer c.warnNoLeader(&cf, qm)
	if cf.json {
		return c.printJSON(api.Decisions{Decisions: nonNilList(ds)})
	}
	if len(ds) == 0 {
		fmt.Fprintln(c.Out, "No decisions.")
		notePolicy(c.Ctx, c.Err, cf.client(), f.Policy)
		noteLocality(c.Ctx, c.Err, cf.client(), f.Locality, "decision", func() ([]string, error) {
			all, err := cf.client().Decisions(c.Ctx, api.DecisionFilter{})
			var out []string
			for _, d := range all {
				out = append(out, d.Locality)
			}
			return out, err
		})
		return ExitOK
	}
	w := c.table()
	fmt.Fprintln(w, "Time\tPolicy\tKind\tLocality\tRequest\tReason")
	for _, d := range ds {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Time.UTC().Format(time.RFC3339), dash(d.Policy), cell(d.Kind), dash(d.Locality),
			dash(d.Request), oneLine(d.Reason))
	}
	w.Flush()
	return ExitOK
}

// dataTime is the agent's data time: its last cycle's, which the
// decisions it records are stamped with (a simulator's or a replay's
// clock), or the wall clock when the agent has run no cycle yet or does
// not answer (the decisions call then says why).
func (c *DecisionsCommand) dataTime(client *api.Client) time.Time {
	st, err := client.Status(c.Ctx)
	if err != nil || st.LastCycle == nil || st.LastCycle.DataTime.IsZero() {
		return time.Now()
	}
	return st.LastCycle.DataTime
}

// notePolicy says, on w, when a -policy filter that matched nothing names
// no policy the agent has (a typo, or a policy removed since), with the
// ones it has; nothing when it does or the agent does not say.
func notePolicy(ctx context.Context, w io.Writer, client *api.Client, name string) {
	if name == "" {
		return
	}
	pols, err := client.Policies(ctx)
	if err != nil {
		return
	}
	var names []string
	for _, p := range pols {
		if p.Name == name {
			return
		}
		names = append(names, p.Name)
	}
	has := "it has none"
	if len(names) > 0 {
		has = "its policies: " + strings.Join(names, ", ")
	}
	fmt.Fprintf(w, "note: the agent has no policy %q (%s).\n", name, has)
}

// noteLocality says, on w, when a -locality filter that matched nothing
// holds none of the localities the agent knows: its policies' and those
// of the entries listed (what seen returns: the unfiltered list's
// localities, e.g. requests' sources and targets). It names them, and what
// the filter's path means, as a locality path is easily mistaken ("dc1/web"
// is node pool web of dc1; a node class is its third part). Nothing when
// one lies within the filter, or the agent does not say.
func noteLocality(ctx context.Context, w io.Writer, client *api.Client, filter, what string, seen func() ([]string, error)) {
	if filter == "" {
		return
	}
	pols, err := client.Policies(ctx)
	if err != nil {
		return
	}
	more, err := seen()
	if err != nil {
		return
	}
	var known []string
	for _, p := range pols {
		known = append(known, p.Locality)
	}
	known = append(known, more...)
	slices.Sort(known)
	known = slices.Compact(slices.DeleteFunc(known, func(l string) bool { return l == "" }))
	for _, l := range known {
		if api.InLocality(l, filter) {
			return
		}
	}
	has := "it knows none"
	if len(known) > 0 {
		has = "the localities it knows: " + cell(strings.Join(known, ", "))
	}
	fmt.Fprintf(w, "note: no policy or %s of the agent is in locality %q (%s); %s.\n", what, filter, describeLocality(filter), has)
}

// describeLocality spells out a locality path's parts: "dc1/web" is
// "datacenter dc1, node pool web".
func describeLocality(path string) string {
	l, err := policies.ParseLocality(path)
	if err != nil {
		return path
	}
	var parts []string
	for _, p := range []struct{ what, name string }{{"datacenter ", l.Datacenter}, {"node pool ", l.NodePool}, {"node class ", l.NodeClass}} {
		if p.name != "" {
			parts = append(parts, p.what+p.name)
		}
	}
	return strings.Join(parts, ", ")
}
