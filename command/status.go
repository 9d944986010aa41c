package command

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/cli"
)

func init() {
	register("status", func(m Meta) cli.Command { return &StatusCommand{Meta: m} })
}

// StatusCommand prints the agent cluster's status.
type StatusCommand struct{ Meta }

func (c *StatusCommand) Synopsis() string {
	return "Show the agents' leader, peers, last cycle and stale series"
}

func (c *StatusCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape status [options]

  Shows the agent's Raft state, the cluster's ID (see docs/clustering.md;
  "Other cluster" when a server it would join, server.retry_join,
  belongs to another cluster running its own leader beside this one's),
  the leader, every server of the Raft configuration with its suffrage
  (voter or non-voter; the leader's answer also says whether each answered
  its last health check), the client agents reporting their nodes' stats,
  the last collect and forecast cycle, the policies' series it did not
  forecast and why ("warming up: 5 of 12 points, first forecast at T",
  stale, no samples yet: with the reason when the agent knows it, such as
  no ready Nomad node in the policy's locality or IOPS without
  prometheus.address), and every series the leader could not refresh
  (stale series are excluded from forecasting until fresh samples arrive).
  Any server answers; a client agent forwards the question to the leader.

Options:
` + clientFlagsHelp + `

Example:

  $ foreshape status -address 127.0.0.1:7575
`)
}

func (c *StatusCommand) Run(args []string) int {
	var cf clientFlags
	fs := c.FlagSet("status", c.Help)
	cf.register(fs)
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.UsageError("status", "status takes no arguments")
	}
	st, err := cf.client().Status(c.Ctx)
	if err != nil {
		return c.apiError(err)
	}
	if cf.json {
		return c.printJSON(st)
	}
	// The node and the leader by the name each server gave, when the peer
	// table knows it (a Raft ID or address alone does not say which host).
	node, leader := st.Node, st.Leader
	for _, p := range st.Peers {
		if p.ID == st.Node {
			node = named(p.Name, st.Node)
		}
		if p.Leader && st.Leader != "" && p.Address == st.Leader {
			leader = named(p.Name, st.Leader)
		}
	}
	w := c.table()
	fmt.Fprintf(w, "Node\t%s\n", cell(node))
	if st.ClusterID != "" {
		fmt.Fprintf(w, "Cluster\t%s\n", st.ClusterID)
	}
	fmt.Fprintf(w, "Version\t%s\n", cell(st.Version))
	fmt.Fprintf(w, "State\t%s\n", st.State)
	if st.Halted != "" {
		fmt.Fprintf(w, "Halted\t%s\n", oneLine(st.Halted))
	}
	if st.DataDirError != "" {
		fmt.Fprintf(w, "Data dir\t%s\n", oneLine(st.DataDirError))
	}
	if st.Superseded != "" {
		fmt.Fprintf(w, "Superseded\t%s\n", oneLine(st.Superseded))
	}
	if st.BesideOther != "" {
		fmt.Fprintf(w, "Other cluster\t%s\n", oneLine(st.BesideOther))
	}
	switch {
	case st.Leader == "" && st.Superseded != "":
		// Not a leader yet to be elected: this server takes part in no
		// election (the Superseded line says why and what to do).
		fmt.Fprintf(w, "Leader\tnone: this server takes part in no election (Superseded, above)\n")
	case st.Leader == "" && st.NoLeader != "":
		fmt.Fprintf(w, "Leader\tnone: %s\n", oneLine(st.NoLeader))
	default:
		fmt.Fprintf(w, "Leader\t%s\n", cell(leader))
	}
	fmt.Fprintf(w, "Policies\t%d\n", st.Policies)
	fmt.Fprintf(w, "Sources\t%s\n", cell(strings.Join(st.Sources, ", ")))
	fmt.Fprintf(w, "Series\t%d (%d stale)\n", st.Series, len(st.Stale))
	// Ages are read on the agent's clock (its answer's now), so that a
	// reader whose clock is off shows them right; an older agent's answer
	// has none, and the reader's clock stands in.
	now := st.Now
	if now.IsZero() {
		now = time.Now()
	}
	if lc := st.LastCycle; lc != nil {
		fmt.Fprintf(w, "Last cycle\t%s ago, took %s, data time %s\n",
			now.Sub(lc.Started).Round(time.Second), lc.Duration.Round(time.Millisecond), lc.DataTime.Format(time.RFC3339))
		fmt.Fprintf(w, "\t%d samples, %d forecasts, %d hotspots\n", lc.Collected, lc.Forecasts, lc.Hotspots)
		if lc.Error != "" {
			fmt.Fprintf(w, "\terror: %s\n", oneLine(lc.Error))
		}
	} else if !st.IsLeader && st.Leader == "" {
		fmt.Fprintf(w, "Last cycle\tnone: no leader runs the cycle\n")
	} else if !st.IsLeader {
		fmt.Fprintf(w, "Last cycle\tnone: this agent does not lead; the leader (%s) runs the cycle and serves forecasts\n", cell(st.Leader))
	} else {
		fmt.Fprintf(w, "Last cycle\tnone yet\n")
	}
	if st.NotActing != "" {
		since := ""
		if st.NotActingSince != nil {
			since = fmt.Sprintf(" for %s", now.Sub(*st.NotActingSince).Round(time.Second))
		}
		fmt.Fprintf(w, "Acting\tno%s: %s\n", since, oneLine(st.NotActing))
	}
	w.Flush()
	if len(st.Peers) > 0 {
		fmt.Fprintln(c.Out, "\nServers")
		w = c.table()
		fmt.Fprintln(w, "Name\tID\tRaft address\tHTTP address\tSuffrage\tLeader\tHealthy\tVersion")
		for _, p := range st.Peers {
			healthy := "-"
			if p.Healthy != nil {
				healthy = fmt.Sprint(*p.Healthy)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%v\t%s\t%s\n", cell(orDash(p.Name)), cell(p.ID), cell(p.Address), cell(orDash(p.HTTPAddress)), p.Suffrage, p.Leader, healthy, cell(orDash(p.Version)))
		}
		w.Flush()
		for _, p := range st.Peers {
			if p.DataDirError != "" {
				fmt.Fprintf(c.Out, "\n%s cannot write to its data_dir, so it is not healthy: %s\n", cell(named(p.Name, p.ID)), oneLine(p.DataDirError))
			}
		}
	}
	if len(st.Clients) > 0 {
		fmt.Fprintln(c.Out, "\nClient agents")
		w = c.table()
		fmt.Fprintln(w, "Node\tNode ID\tAgent\tAddress\tReporting\tLast seen\tVersion")
		for _, a := range st.Clients {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\t%s\t%s\n", cell(a.NodeName), cell(a.NodeID), cell(a.Name), cell(orDash(a.Address)), a.Reporting,
				a.LastSeen.Format(time.RFC3339), cell(orDash(a.Version)))
		}
		w.Flush()
	}
	if len(st.Pending) > 0 {
		fmt.Fprintln(c.Out, "\nNot forecast")
		w = c.table()
		fmt.Fprintln(w, "Policy\tSeries\tWhy")
		for _, p := range st.Pending {
			fmt.Fprintf(w, "%s\t%s\t%s\n", cell(p.Policy), cell(p.Series), oneLine(p.Note))
		}
		w.Flush()
	}
	if len(st.Stale) > 0 {
		fmt.Fprintln(c.Out, "\nStale series")
		w = c.table()
		fmt.Fprintln(w, "Series\tSince\tReason")
		for _, s := range st.Stale {
			fmt.Fprintf(w, "%s\t%s\t%s\n", cell(s.Series), s.Since.Format(time.RFC3339), oneLine(s.Reason))
		}
		w.Flush()
	}
	return ExitOK
}

// orDash is s, or "-" when empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// named is id (a Raft ID or address) after the name its server gave, when
// that name is its own: "s2 (127.0.0.1:7812)".
func named(name, id string) string {
	if name == "" || name == id {
		return id
	}
	// A dev agent's leader address, "in-memory (dev)", reads
	// "vm (in-memory, dev)", not with parentheses inside parentheses.
	if i := strings.LastIndex(id, " ("); i > 0 && strings.HasSuffix(id, ")") {
		return name + " (" + id[:i] + ", " + id[i+2:]
	}
	return name + " (" + id + ")"
}
