package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/foreshape/foreshape/agent/api"
)

// QueueWatchCommand follows the queue with blocking queries.
type QueueWatchCommand struct {
	Meta
	// terminal reports whether w is a terminal; nil means isTerminal.
	terminal func(w io.Writer) bool
	// size is the terminal's width and height in characters, 0 when not
	// known; nil means terminalSize.
	size func(w io.Writer) (width, height int)
}

func (c *QueueWatchCommand) Synopsis() string { return "Follow the queue as it changes" }

func (c *QueueWatchCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape queue watch [options]

  Follows the migration queue until interrupted (Ctrl-C), waiting for each
  change with a blocking query rather than polling. On a terminal the table
  of 'queue list' is redrawn in place at every change, fitted to the
  screen: each line cut to its width, and a queue longer than the screen
  shown from its top (running requests, then queued ones by score), with
  how many requests are left out; otherwise (a pipe, a
  file) one line is printed per request that appears or changes state,
  reason, priority or score, one when a request is no longer listed (it
  left the filters, or the agent no longer holds it), and one when the
  queue is paused or resumed.
  With -json each change of what the filters show prints the whole
  (filtered) queue as one line of JSON. When the agent cannot be reached
  it says so and tries again, asking for the queue as it is: an agent
  that comes back with a lower index (restarted, or another agent at the
  address) is followed from there, as is a queue a snapshot restore by an
  earlier release took back to its backup's index, and stderr says the
  index went back. A pause is shown with who or what paused the queue,
  and a pause under another name while paused (a snapshot restore
  pauses the queue it restores) as paused again.

Options:

  -state=LIST      Only requests in these states, comma-separated.
  -locality=PATH   Only requests from or to a locality within this one
                   (dc1 holds dc1/*/web), as in queue list.
  -retry=DURATION  How long to wait after an error before trying again.
                   Default: 2s.
` + clientFlagsHelp + `

Example:

  $ foreshape queue watch | tee moves.log
  09:00:01 queue running
  09:00:01 mr-3 pending node/dc1-a-1 dc1 -> dc2 priority 70 score 2.41: rack a maintenance
  09:00:31 mr-3 reserving node/dc1-a-1 dc1 -> dc2 priority 70 score 2.41: rack a maintenance
`)
}

func (c *QueueWatchCommand) Run(args []string) int {
	var cf clientFlags
	fs := c.FlagSet("queue watch", c.Help)
	cf.register(fs)
	states := fs.String("state", "", "states")
	locality := fs.String("locality", "", "locality")
	retry := fs.Duration("retry", 2*time.Second, "retry")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.UsageError("queue watch", "queue watch takes no arguments")
	}
	if *retry <= 0 {
		return c.UsageError("queue watch", "-retry must be positive")
	}
	opts := api.QueueOptions{Locality: *locality}
	var err error
	if opts.States, err = parseStates(*states); err != nil {
		return c.UsageError("queue watch", err.Error())
	}
	if err := api.CheckLocality(*locality); err != nil {
		return c.UsageError("queue watch", "-"+err.Error())
	}
	terminal := c.terminal
	if terminal == nil {
		terminal = isTerminal
	}
	redraw := !cf.json && terminal(c.Out)
	size := c.size
	if size == nil {
		size = terminalSize
	}
	client := cf.client()
	var seen map[string]api.MigrationRequest
	var paused, noLeader bool
	var pausedBy string // who or what paused the queue, as last shown
	var lastJSON []byte // the last answer shown, as -json prints it
	var shown uint64    // the index of the last answer shown
	for {
		q, qm, err := client.QueueWithMeta(c.Ctx, &opts)
		if c.Ctx.Err() != nil {
			return ExitOK
		}
		if err != nil {
			var se *api.StatusError
			if errors.As(err, &se) && se.Code/100 == 4 {
				return c.apiError(err)
			}
			fmt.Fprintf(c.Err, "%s error: %s (trying again in %s)\n", clock(), cell(err.Error()), *retry)
			// The agent may come back with a lower index (restarted, or
			// another agent at the address): asked for a change past the
			// old one, it would say nothing for its whole wait (5
			// minutes). Ask without an index, answered at once; the
			// answer's index is followed from there.
			opts.WaitIndex = 0
			if !sleepCtx(c.Ctx, *retry) {
				return ExitOK
			}
			continue
		}
		b, _ := json.Marshal(q)
		if seen != nil && opts.WaitIndex != 0 && q.Index == opts.WaitIndex && qm.NoLeader == noLeader && bytes.Equal(b, lastJSON) {
			// The wait ended without a change. The same index with
			// another queue is a change: a snapshot restore of a
			// backup taken with no change since leaves the index where
			// it was, and pauses the queue.
			continue
		}
		var wentBack string
		if seen != nil && q.Index < shown {
			wentBack = fmt.Sprintf("%s the queue's index went back from %d to %d (a snapshot restore, a restarted agent, or another one at the address): following it from there", clock(), shown, q.Index)
		}
		switch {
		case cf.json:
			// One line per change of what the filters show: a change
			// elsewhere in the queue moves the index alone.
			if !bytes.Equal(b, lastJSON) {
				fmt.Fprintf(c.Out, "%s\n", b)
			}
		case redraw:
			frame := fmt.Sprintf("%s  index %d  (Ctrl-C to stop)\n\n%s", clock(), q.Index, renderQueue(q))
			width, height := size(c.Out)
			reserve := 0 // the lines said after the frame
			switch {
			case qm.NoLeader:
				reserve += wrappedLines(clock()+" "+noLeaderWarning(&cf), width)
			case noLeader:
				reserve++ // "… knows a leader again"
			}
			if wentBack != "" {
				reserve += wrappedLines(wentBack, width)
			}
			fmt.Fprintf(c.Out, "\x1b[H\x1b[2J%s", fitScreen(frame, width, height, reserve))
		default:
			c.printChanges(q, seen, paused, pausedBy)
		}
		if wentBack != "" {
			// After the output: a redraw clears the screen.
			fmt.Fprintln(c.Err, wentBack)
		}
		switch {
		case qm.NoLeader && (redraw || !noLeader):
			// Once, or after each redraw, which clears the screen.
			c.UI.Warn(clock() + " " + noLeaderWarning(&cf))
		case !qm.NoLeader && noLeader:
			fmt.Fprintf(c.Err, "%s the agent at %s knows a leader again\n", clock(), withDefaultPort(cf.address))
		}
		paused, pausedBy, shown, noLeader, lastJSON = q.Paused, q.PausedBy, q.Index, qm.NoLeader, b
		if seen == nil {
			seen = map[string]api.MigrationRequest{}
		}
		clear(seen)
		for _, r := range q.Requests {
			seen[r.ID] = r
		}
		if q.Index == 0 {
			// An agent that sends no index cannot block: poll.
			if !sleepCtx(c.Ctx, *retry) {
				return ExitOK
			}
		}
		opts.WaitIndex = q.Index
	}
}

// printChanges prints one line per change since the last answer (seen is
// nil on the first); paused and pausedBy are the last answer's.
func (c *QueueWatchCommand) printChanges(q api.Queue, seen map[string]api.MigrationRequest, paused bool, pausedBy string) {
	now := clock()
	by := ""
	if q.PausedBy != "" {
		by = " by " + cell(q.PausedBy)
	}
	switch {
	case seen == nil && q.Paused:
		fmt.Fprintf(c.Out, "%s queue paused%s\n", now, by)
	case seen == nil:
		fmt.Fprintf(c.Out, "%s queue running\n", now)
	case q.Paused && !paused:
		fmt.Fprintf(c.Out, "%s queue paused%s\n", now, by)
	case q.Paused && q.PausedBy != pausedBy:
		// Paused again while paused: a snapshot restore pauses the
		// queue it restores under its own name.
		fmt.Fprintf(c.Out, "%s queue paused again%s\n", now, by)
	case !q.Paused && paused:
		fmt.Fprintf(c.Out, "%s queue resumed\n", now)
	}
	for _, r := range q.Requests {
		old, ok := seen[r.ID]
		if ok && old.State == r.State && old.Reason == r.Reason && old.Priority == r.Priority && old.Score == r.Score {
			continue
		}
		fmt.Fprintf(c.Out, "%s %s\n", now, requestLine(r))
	}
	var gone []string
	for id := range seen {
		if !hasRequest(q.Requests, id) {
			gone = append(gone, id)
		}
	}
	sort.Strings(gone)
	for _, id := range gone {
		fmt.Fprintf(c.Out, "%s %s no longer listed\n", now, cell(id))
	}
}

func hasRequest(rs []api.MigrationRequest, id string) bool {
	for _, r := range rs {
		if r.ID == id {
			return true
		}
	}
	return false
}

// sleepCtx waits d; it reports false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func clock() string { return time.Now().Format("15:04:05") }

// fitScreen fits a redraw's frame to a terminal width characters wide and
// height lines high (0: not known), keeping reserve lines free below it
// (the warning that follows it) and the last line for the cursor: each
// line is cut to the width, ending in "…", so that none wraps, and a
// frame longer than the screen keeps its top (the queue's state, the
// header, running requests, then queued ones by score) and says how many
// requests it left out. Written whole, its top scrolled off the screen.
func fitScreen(frame string, width, height, reserve int) string {
	lines := strings.Split(strings.TrimSuffix(frame, "\n"), "\n")
	if avail := height - 1 - reserve; height > 0 && len(lines) > avail {
		keep := max(avail-1, 1)
		if keep < len(lines) {
			// The frame's first four lines are the clock, a blank line,
			// the queue's state and the table's header; one line each
			// request after them.
			hidden := len(lines) - max(keep, 4)
			lines = append(lines[:keep:keep], fmt.Sprintf("… and %d more requests: 'foreshape queue list' lists them all", hidden))
		}
	}
	if width > 0 {
		for i, l := range lines {
			if r := []rune(l); len(r) > width {
				lines[i] = string(r[:width-1]) + "…"
			}
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// wrappedLines is how many lines of a terminal width characters wide s
// takes (1 when the width is not known).
func wrappedLines(s string, width int) int {
	n := utf8.RuneCountInString(s)
	if width <= 0 || n <= width {
		return 1
	}
	return (n + width - 1) / width
}
