package command

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/cli"

	"github.com/foreshape/foreshape/agent/api"
)

func init() {
	group("operator", "Operate the agents' Raft cluster", `
Usage: foreshape operator <subcommand> [options] [args]

  Commands for operators of the foreshape servers' Raft cluster.

Example:

  $ foreshape operator raft list-peers -address https://10.0.0.11:7575
`)
	group("operator raft", "Inspect and change the Raft configuration", `
Usage: foreshape operator raft <subcommand> [options] [args]

Example:

  $ foreshape operator raft remove-peer -id 9e3f1c0a-5b2d-4c1e-8f00-1a2b3c4d5e6f
`)
	register("operator raft list-peers", func(m Meta) cli.Command { return &RaftListPeersCommand{Meta: m} })
	register("operator raft remove-peer", func(m Meta) cli.Command { return &RaftRemovePeerCommand{Meta: m} })
}

// RaftListPeersCommand lists the Raft configuration.
type RaftListPeersCommand struct{ Meta }

func (c *RaftListPeersCommand) Synopsis() string { return "List the servers of the Raft configuration" }

func (c *RaftListPeersCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape operator raft list-peers [options]

  Lists every server of the Raft configuration as the agent at -address
  knows it: its name, Raft ID and address, HTTP API address, whether it is
  the leader, whether it votes, and its version. Asked of the leader, it
  also shows whether each server answered the leader's last health check
  and how long ago it last did, as the leader measured it when it
  answered, whatever this machine's clock says (an agent too old to send
  that age: aged by this machine's clock). A server that answers but
  cannot write to its data_dir (a full, read-only or failing disk) is
  not healthy, and a line under the table says which file and why. A
  server silent for server.promote_after is replaced by a spare
  non-voter, and one silent for server.remove_after leaves the
  configuration. A server that has not
  joined a cluster yet has an empty configuration: list-peers says so
  instead of a table.

Options:
` + clientFlagsHelp + `

Example:

  $ foreshape operator raft list-peers -address http://10.0.0.11:7575
  Name  ID                                    Address         State     Voter  Healthy  Last contact  Version
  fs-1  9e3f1c0a-5b2d-4c1e-8f00-1a2b3c4d5e6f  10.0.0.11:7576  leader    true   true     0s            0.4.0
  fs-2  2c41d0be-9a7e-4f35-b6d2-0e1f2a3b4c5d  10.0.0.12:7576  follower  true   true     0s            0.4.0
`)
}

func (c *RaftListPeersCommand) Run(args []string) int {
	var cf clientFlags
	fs := c.FlagSet("operator raft list-peers", c.Help)
	cf.register(fs)
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.UsageError("operator raft list-peers", "list-peers takes no arguments")
	}
	rc, err := cf.client().RaftConfiguration(c.Ctx)
	if err != nil {
		return c.apiError(err)
	}
	if cf.json {
		return c.printJSON(rc)
	}
	if len(rc.Servers) == 0 {
		// An empty table would pass for an answer about a cluster.
		fmt.Fprintf(c.Out, "No servers: %s has not joined a cluster yet, so its Raft configuration is empty (not even itself) and it knows no leader: "+
			"it waits for server.bootstrap_expect servers to find each other, or for a server of server.retry_join to take it in. "+
			"'foreshape status' on it says what its last look for them found.\n", orDash(rc.AnsweredBy))
		return ExitOK
	}
	leader := slices.ContainsFunc(rc.Servers, func(s api.RaftServer) bool { return s.Leader })
	w := c.table()
	fmt.Fprintln(w, "Name\tID\tAddress\tState\tVoter\tHealthy\tLast contact\tVersion")
	now := time.Now()
	for _, s := range rc.Servers {
		// Without a leader the answering server cannot tell who follows.
		state := "-"
		switch {
		case s.Leader:
			state = "leader"
		case leader:
			state = "follower"
		}
		healthy, last := "-", "-"
		if s.Healthy != nil {
			healthy = fmt.Sprint(*s.Healthy)
		}
		switch {
		case s.LastContactAgeS != nil:
			last = time.Duration(*s.LastContactAgeS * float64(time.Second)).Round(time.Second).String()
		case s.LastContact != nil:
			// An agent older than last_contact_age_s: only this
			// machine's clock can age it.
			last = now.Sub(*s.LastContact).Round(time.Second).String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\t%s\t%s\t%s\n", orDash(s.Name), s.ID, s.Address, state, s.Suffrage == "voter", healthy, last, orDash(s.Version))
	}
	w.Flush()
	for _, s := range rc.Servers {
		if s.Halted != "" {
			fmt.Fprintf(c.Out, "\n%s stopped applying the log: %s\n", orDash(s.Name), s.Halted)
		}
		if s.Superseded != "" {
			who := s.Name
			if who == "" {
				who = s.ID
			}
			fmt.Fprintf(c.Out, "\n%s no longer leads or votes: %s\n", cell(who), cell(s.Superseded))
		}
		if s.DataDirError != "" {
			who := s.Name
			if who == "" {
				who = s.ID
			}
			fmt.Fprintf(c.Out, "\n%s cannot write to its data_dir, so it is not healthy: %s\n", cell(who), cell(s.DataDirError))
		}
	}
	if !leader {
		fmt.Fprintf(c.Out, "\nNo leader: %s knows of none; 'foreshape status' on it says why.\n", orDash(rc.AnsweredBy))
	}
	return ExitOK
}

// RaftRemovePeerCommand removes a server from the Raft configuration.
type RaftRemovePeerCommand struct{ Meta }

func (c *RaftRemovePeerCommand) Synopsis() string {
	return "Remove a server from the Raft configuration"
}

func (c *RaftRemovePeerCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape operator raft remove-peer [options] (-id=ID | -peer-address=ADDR)

  Removes a server from the Raft configuration, by its Raft ID or its Raft
  address (list-peers shows both). Any server takes the request and passes
  it to the leader. The leader removes servers silent longer than
  server.remove_after on its own; use this to remove one at once. A server
  that is still running joins again as a non-voter: stop it first. The
  leader cannot remove itself.

Options:

  -id=ID               The server's Raft ID.
  -peer-address=ADDR   The server's Raft address, HOST:PORT.
` + clientFlagsHelpWithoutJSON + `

Example:

  $ foreshape operator raft remove-peer -id 2c41d0be-9a7e-4f35-b6d2-0e1f2a3b4c5d
  Removed server 2c41d0be-9a7e-4f35-b6d2-0e1f2a3b4c5d from the Raft configuration.
`)
}

func (c *RaftRemovePeerCommand) Run(args []string) int {
	var cf clientFlags
	fs := c.FlagSet("operator raft remove-peer", c.Help)
	cf.registerWithoutJSON(fs) // the agent answers a removal with no content
	id := fs.String("id", "", "")
	addr := fs.String("peer-address", "", "")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.UsageError("operator raft remove-peer", "remove-peer takes no arguments; name the server with -id or -peer-address")
	}
	if (*id == "") == (*addr == "") {
		return c.UsageError("operator raft remove-peer", "name the server with exactly one of -id and -peer-address")
	}
	if err := cf.client().RemovePeer(c.Ctx, *id, *addr); err != nil {
		return c.writeError(err, "The agent may have removed the server before its answer was lost: 'foreshape operator raft list-peers' shows whether it did.")
	}
	what := *id
	if what == "" {
		what = "at " + *addr
	}
	fmt.Fprintf(c.Out, "Removed server %s from the Raft configuration.\n", what)
	return ExitOK
}
