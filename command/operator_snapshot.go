package command

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/cli"

	"github.com/foreshape/foreshape/agent"
	"github.com/foreshape/foreshape/agent/api"
)

func init() {
	group("operator snapshot", "Save, restore and inspect backups of the replicated state", `
Usage: foreshape operator snapshot <subcommand> [options] FILE

  A snapshot is a backup of the state the servers replicate: the
  migration queue, reservations, intents, scale actions, decisions, the
  forecasting series and the cluster's members. save writes one taken
  by the leader to a file, restore puts one back into a cluster (the
  same one, or a new one after every server was lost), and inspect
  describes one without an agent.

Example:

  $ foreshape operator snapshot save backup.snap
  $ foreshape operator snapshot inspect backup.snap
  $ foreshape operator snapshot restore backup.snap
`)
	register("operator snapshot save", func(m Meta) cli.Command { return &SnapshotSaveCommand{Meta: m} })
	register("operator snapshot restore", func(m Meta) cli.Command { return &SnapshotRestoreCommand{Meta: m} })
	register("operator snapshot inspect", func(m Meta) cli.Command { return &SnapshotInspectCommand{Meta: m} })
}

// oneFile returns the single FILE argument of cmd.
func (m *Meta) oneFile(cmd string, args []string) (string, int, bool) {
	if len(args) != 1 || args[0] == "" {
		return "", m.UsageError(cmd, fmt.Sprintf("%s takes one argument, the snapshot's file (given %d)", cmd, len(args))), false
	}
	return args[0], ExitOK, true
}

// printSnapshot prints a backup's description: where it comes from, then
// what its state holds.
func (m *Meta) printSnapshot(info api.SnapshotInfo) {
	w := m.table()
	fmt.Fprintf(w, "Index\t%d\n", info.Index)
	fmt.Fprintf(w, "Term\t%d\n", info.Term)
	fmt.Fprintf(w, "Taken\t%s by %s\n", info.Time.UTC().Format(time.RFC3339), cell(info.TakenBy))
	fmt.Fprintf(w, "Cluster ID\t%s\n", orDash(cell(info.ClusterID)))
	fmt.Fprintf(w, "foreshape version\t%s\n", orDash(cell(info.Release)))
	fmt.Fprintf(w, "State format\t%d (protocol %d)\n", info.StateFormat, info.StateProtocol)
	fmt.Fprintf(w, "State size\t%d bytes\n", info.Size)
	fmt.Fprintf(w, "State SHA-256\t%s\n", info.SHA256)
	var servers []string
	for _, s := range info.Servers {
		role := "voter"
		if !s.Voter {
			role = "nonvoter"
		}
		servers = append(servers, fmt.Sprintf("%s at %s (%s)", cell(s.ID), cell(s.Address), role))
	}
	fmt.Fprintf(w, "Servers\t%s\n", orDash(strings.Join(servers, ", ")))
	w.Flush()
	fmt.Fprintln(m.Out)
	m.printState(info.State)
}

// printState prints what a state holds.
func (m *Meta) printState(s api.SnapshotState) {
	w := m.table()
	fmt.Fprintf(w, "Applied index\t%d\n", s.AppliedIndex)
	fmt.Fprintf(w, "Series\t%d\n", s.Series)
	fmt.Fprintf(w, "Migration requests\t%d\n", s.Requests)
	fmt.Fprintf(w, "Reservations\t%d\n", s.Reservations)
	fmt.Fprintf(w, "Intents\t%d\n", s.Intents)
	fmt.Fprintf(w, "Scale actions\t%d\n", s.ScaleActions)
	fmt.Fprintf(w, "Decisions\t%d\n", s.Decisions)
	fmt.Fprintf(w, "Servers\t%d\n", s.Servers)
	fmt.Fprintf(w, "Client agents\t%d\n", s.Clients)
	fmt.Fprintf(w, "Series tiers\t%s\n", orDash(s.Layout))
	w.Flush()
}

// inspectFile reads and checks the backup at path; its error names the
// file.
func inspectFile(path string) (api.SnapshotInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return api.SnapshotInfo{}, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	info, err := agent.InspectSnapshot(f)
	if err != nil {
		return info, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// SnapshotSaveCommand saves a backup.
type SnapshotSaveCommand struct{ Meta }

func (c *SnapshotSaveCommand) Synopsis() string {
	return "Save a snapshot of the replicated state to a file"
}

func (c *SnapshotSaveCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape operator snapshot save [options] FILE

  Saves a snapshot of the state the servers replicate to FILE. The leader
  takes it (a follower or a client agent at -address passes the request
  on), at one Raft index. The file is a gzip-compressed tar archive:
  meta.json (the Raft index and term, when and by which server it was
  taken, the foreshape version, the state's format, the servers), the
  state, and SHA256SUMS.

  The snapshot is written to a temporary file beside FILE, synced to disk
  and checked whole (its checksums) before it is renamed to FILE, so FILE
  is never left half-written: a save that fails leaves FILE as it was.
  It prints what the snapshot holds.

Options:
` + clientFlagsHelp + `

Example:

  $ foreshape operator snapshot save -address http://10.0.0.11:7575 backup.snap
  Saved backup.snap: 52311 bytes, the state at index 10482 (term 3).
  ...
`)
}

func (c *SnapshotSaveCommand) Run(args []string) int {
	var cf clientFlags
	fs := c.FlagSet("operator snapshot save", c.Help)
	cf.register(fs)
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	path, code, ok := c.oneFile("operator snapshot save", fs.Args())
	if !ok {
		return code
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		c.UI.Error(fmt.Sprintf("error: %s: a temporary file beside it: %v", path, unwrapPath(err)))
		return ExitInvalid
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // gone once renamed
	}()
	n, err := cf.client().SaveSnapshot(c.Ctx, tmp)
	if err != nil {
		c.apiError(err)
		c.UI.Error(fmt.Sprintf("%s was not written.", path))
		return ExitInvalid
	}
	if err := tmp.Sync(); err != nil {
		c.UI.Error(fmt.Sprintf("error: %s: %v; %s was not written", tmp.Name(), err, path))
		return ExitInvalid
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		c.UI.Error(fmt.Sprintf("error: %s: %v", tmp.Name(), err))
		return ExitInvalid
	}
	info, err := agent.InspectSnapshot(tmp)
	if err != nil {
		c.UI.Error(fmt.Sprintf("error: the snapshot the agent sent is not whole: %v; %s was not written", err, path))
		return ExitInvalid
	}
	if err := tmp.Close(); err != nil {
		c.UI.Error(fmt.Sprintf("error: %s: %v; %s was not written", tmp.Name(), err, path))
		return ExitInvalid
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		c.UI.Error(fmt.Sprintf("error: %v; %s was not written", err, path))
		return ExitInvalid
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // the rename itself, on filesystems that need it
		d.Close()
	}
	if cf.json {
		return c.printJSON(info)
	}
	fmt.Fprintf(c.Out, "Saved %s: %d bytes, the state at index %d (term %d).\n\n", cell(path), n, info.Index, info.Term)
	c.printSnapshot(info)
	return ExitOK
}

// SnapshotRestoreCommand restores a backup.
type SnapshotRestoreCommand struct{ Meta }

func (c *SnapshotRestoreCommand) Synopsis() string {
	return "Replace the replicated state with a snapshot's"
}

func (c *SnapshotRestoreCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape operator snapshot restore [options] FILE

  Replaces the state of the cluster at -address with the snapshot in
  FILE, which 'foreshape operator snapshot save' wrote. It asks nothing:
  the state as it was is gone once it answers. The leader restores it
  through Raft, so every server ends with the snapshot's state, and the
  servers' configuration stays the cluster's own: a snapshot restores
  into the cluster it came from or into a new one after every server was
  lost. The leader's work (collecting, forecasting, acting) starts again
  from the restored state, as after an election.

  The restored migration queue comes back paused, whatever the snapshot
  had: its requests may have been done or cancelled since it was saved,
  and a running queue would start their moves against today's cluster.
  The pause is part of the state restored: the leader writes it into the
  snapshot's state before raft restores it, so every server restores the
  queue paused and no restored request starts a move, whichever server
  leads after. The queue records it as paused by the snapshot restore,
  naming the snapshot's index and time, over a pause the snapshot held,
  which restore then names. Review the restored requests with
  'foreshape queue list', then resume the queue with
  'foreshape queue resume'. -keep-queue keeps the queue paused or
  running as the snapshot had it.

  FILE is checked whole here first, and again by the leader, which also
  restores it into a scratch state first: a file that is truncated,
  corrupted (a checksum differs), not a foreshape snapshot, of a state
  format this release cannot read, or whose series tiers or profiles
  differ from the cluster's state configuration is refused, saying why,
  and nothing changes. A follower or a client agent at -address passes
  FILE on to the leader as it reads it.

  It prints whether the queue is paused and why, what it replaced and
  what it restored.

Options:

  -keep-queue    Keep the migration queue paused or running as the
                 snapshot had it, instead of pausing it.
` + clientFlagsHelp + `

Example:

  $ foreshape operator snapshot restore backup.snap
  Restored backup.snap: the state at index 10482 (taken 2026-12-06T13:00:00Z by 9e3f1c0a-…) now stands at index 10517.
  Queue: paused by the snapshot restore (the backup of index 10482 taken 2026-12-06T13:00:00Z): review …
  ...
`)
}

func (c *SnapshotRestoreCommand) Run(args []string) int {
	var cf clientFlags
	fs := c.FlagSet("operator snapshot restore", c.Help)
	cf.register(fs)
	keepQueue := fs.Bool("keep-queue", false, "")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	path, code, ok := c.oneFile("operator snapshot restore", fs.Args())
	if !ok {
		return code
	}
	if _, err := inspectFile(path); err != nil {
		c.UI.Error(fmt.Sprintf("error: %s; nothing was restored", printable(err.Error(), "")))
		return ExitInvalid
	}
	f, err := os.Open(path)
	if err != nil {
		c.UI.Error(fmt.Sprintf("error: %v", err))
		return ExitInvalid
	}
	defer f.Close()
	res, err := cf.client().RestoreSnapshot(c.Ctx, f, &api.RestoreOptions{KeepQueue: *keepQueue})
	if err != nil {
		if se, ok := err.(*api.StatusError); ok && se.Code == http.StatusRequestEntityTooLarge {
			c.UI.Error(fmt.Sprintf("error: %s: %v\nThe agent at %s is a client agent of an earlier release, which passes on requests of up to 4 MiB: point -address at a server, or upgrade it. Nothing was restored.",
				path, err, withDefaultPort(cf.address)))
			return ExitInvalid
		}
		return c.writeError(fmt.Errorf("%s: %w", path, err), "The agent may have restored it before its answer was lost: 'foreshape operator snapshot save' of the state now, and inspect, show which state the cluster holds.")
	}
	// pauseFailed: the state is restored, but not paused as asked.
	pauseFailed := func() int {
		c.UI.Error(fmt.Sprintf("error: %s is restored, but the restore could not pause the migration queue, which is as the snapshot had it: %s",
			cell(path), printable(res.Queue.PauseError, "")))
		return ExitInvalid
	}
	if cf.json {
		code := c.printJSON(res)
		if res.Queue.PauseError != "" {
			return pauseFailed()
		}
		return code
	}
	r := res.Restored
	fmt.Fprintf(c.Out, "Restored %s: the state at index %d (taken %s by %s) now stands at index %d.\n",
		cell(path), r.Index, r.Time.UTC().Format(time.RFC3339), cell(r.TakenBy), res.Index)
	if res.Queue.Reason != "" {
		fmt.Fprintf(c.Out, "Queue: %s.\n\n", printable(res.Queue.Reason, ""))
	} else {
		fmt.Fprint(c.Out, "Queue: the agent's answer does not say: 'foreshape queue list' shows whether it is paused.\n\n")
	}
	fmt.Fprintln(c.Out, "Replaced:")
	var buf bytes.Buffer
	sub := c.Meta
	sub.Out = &buf
	sub.printState(res.Replaced)
	fmt.Fprint(c.Out, indent(buf.String()))
	buf.Reset()
	sub.printState(r.State)
	fmt.Fprintln(c.Out, "\nRestored:")
	fmt.Fprint(c.Out, indent(buf.String()))
	if res.Queue.PauseError != "" {
		return pauseFailed()
	}
	return ExitOK
}

func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "")
}

// SnapshotInspectCommand describes a backup.
type SnapshotInspectCommand struct{ Meta }

func (c *SnapshotInspectCommand) Synopsis() string {
	return "Describe a snapshot file"
}

func (c *SnapshotInspectCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape operator snapshot inspect [-json] FILE

  Reads the snapshot in FILE whole, without an agent, checks it as a
  restore does (its checksums, that it is whole and a foreshape snapshot
  this release can read), and prints its metadata and what its state
  holds: the series, migration requests, reservations, intents, scale
  actions, decisions, servers and client agents, and the series tiers
  the state was kept with, which a cluster must share to restore it. A
  file that fails a check is named with why, and inspect exits 1.

Options:

  -json   Print the description as JSON.

Example:

  $ foreshape operator snapshot inspect backup.snap
  Index              10482
  Term               3
  ...
  Migration requests  12
`)
}

func (c *SnapshotInspectCommand) Run(args []string) int {
	fs := c.FlagSet("operator snapshot inspect", c.Help)
	asJSON := fs.Bool("json", false, "")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	path, code, ok := c.oneFile("operator snapshot inspect", fs.Args())
	if !ok {
		return code
	}
	info, err := inspectFile(path)
	if err != nil {
		c.UI.Error(fmt.Sprintf("error: %s", printable(err.Error(), "")))
		return ExitInvalid
	}
	if *asJSON {
		return c.printJSON(info)
	}
	c.printSnapshot(info)
	return ExitOK
}
