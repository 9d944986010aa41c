package command

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
)

func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, keep, want string }{
		{"rack a maintenance", "", "rack a maintenance"},
		{"dc1 → dc2: ünïcode, 日本, emoji 🚀, U+FFFD \uFFFD", "", "dc1 → dc2: ünïcode, 日本, emoji 🚀, U+FFFD \uFFFD"},
		{"a\x1b[2Jb", "", `a\x1b[2Jb`},
		{"title \x1b]0;pwned\x07", "", `title \x1b]0;pwned\a`},
		{"c1 \u009b31m csi", "", `c1 \u009b31m csi`},
		{"nul \x00 del \x7f bad \xff", "", `nul \x00 del \x7f bad \xff`},
		{"tab\tnew\nline\r", "", `tab\tnew\nline\r`},
		{"two\nlines\r", "\n", "two\nlines\\r"},
		{"cancel \u202egnp.exe\u202c, \u2066isolate\u2069 \u200f", "", `cancel \u202egnp.exe\u202c, \u2066isolate\u2069 \u200f`},
	} {
		if got := printable(tc.in, tc.keep); got != tc.want {
			t.Errorf("printable(%q, %q) = %q, want %q", tc.in, tc.keep, got, tc.want)
		}
	}
	if got, want := oneLine("a \n\t b\x1b[0m  c"), `a b\x1b[0m c`; got != want {
		t.Errorf("oneLine = %q, want %q", got, want)
	}
}

// rawControl reports whether s holds a control character other than a
// newline or a tab, or an invalid UTF-8 byte: what could drive a
// terminal.
func rawControl(s string) bool {
	return strings.ContainsAny(s, "\x1b\x07\x00\x7f\r\u009b") || !utf8.ValidString(s)
}

// TestFreeTextCannotDriveTheTerminal: control characters in what the
// agent holds (a reason anyone who may submit writes, a job name, a
// reservation's policy and locality, a decision's reason) and in an
// agent's error are shown escaped in human output; they reached the
// terminal raw (a title change, a screen clear, C1's CSI). -json keeps
// them as the agent sent them.
func TestFreeTextCannotDriveTheTerminal(t *testing.T) {
	const reason = "rack a\x1b]0;pwned\x07 \x1b[2J\u009b31m\x00\x7f\xff done"
	// The agent's JSON encoder sends the invalid byte as U+FFFD.
	const shown = `rack a\x1b]0;pwned\a \x1b[2J\u009b31m\x00\x7f` + "\uFFFD done"
	act := apitest.New()
	act.Groups["web\x1b[31m/fe"] = "dc1"
	addr := actAgent(t, act)
	id, err := act.Submit(context.Background(), api.Submission{Job: "web\x1b[31m", Group: "fe", Target: "dc2", Reason: reason})
	if err != nil {
		t.Fatal(err)
	}
	act.AddDecision(api.Decision{Time: act.Start, Kind: api.DecisionSubmit, Request: id, Policy: "p\x1b[1m", Reason: reason})
	act.AddReservation(api.Reservation{ID: "res-1", Request: id, Policy: "p\x1b[1m", Locality: "dc2\x1b[K", Job: "foreshape-reserve\x1b[8m",
		From: act.Start, Until: act.Start, State: api.ReservationHeld})
	for _, tc := range []struct {
		args  []string
		shown []string
	}{
		{[]string{"queue", "list"}, []string{shown, `job/web\x1b[31m/fe`}},
		{[]string{"queue", "show", id}, []string{shown, `job/web\x1b[31m/fe`}},
		{[]string{"decisions"}, []string{shown, `p\x1b[1m`}},
		{[]string{"reservations"}, []string{`p\x1b[1m`, `dc2\x1b[K`, `foreshape-reserve\x1b[8m`}},
	} {
		code, out, errOut := runCLI(t, insertFlags(tc.args, "-address", addr)...)
		if code != ExitOK || rawControl(out) {
			t.Errorf("%v: exit %d (%s), output %q", tc.args, code, errOut, out)
		}
		for _, s := range tc.shown {
			if !strings.Contains(out, s) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, s, out)
			}
		}
	}
	out, _, stop := runWatch(t, false, "-address", addr)
	waitFor(t, out, shown)
	stop()
	if rawControl(out.String()) {
		t.Errorf("queue watch: %q", out)
	}
	out, _, stop = runWatch(t, true, "-address", addr)
	waitFor(t, out, shown)
	stop()
	if frame := strings.ReplaceAll(out.String(), "\x1b[H\x1b[2J", ""); rawControl(frame) {
		t.Errorf("queue watch on a terminal: %q", out)
	}
	code, jout, _ := runCLI(t, "queue", "show", "-address", addr, "-json", id)
	var mr api.MigrationRequest
	if code != ExitOK || json.Unmarshal([]byte(jout), &mr) != nil || mr.Reason != strings.ToValidUTF8(reason, "\uFFFD") {
		t.Errorf("-json: exit %d, reason %q", code, mr.Reason)
	}

	// An agent's error, and another server's page, keep their newlines.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/queue" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("<html>\n<title>\x1b]0;pwned\x07</title>\n</html>"))
			return
		}
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(api.Error{Error: "request of job web\x1b[2J has started\nline two"})
	}))
	t.Cleanup(srv.Close)
	code, _, errOut := runCLI(t, "queue", "cancel", "-address", srv.URL, "mr-1")
	if code != ExitInvalid || rawControl(errOut) || !strings.Contains(errOut, `job web\x1b[2J has started`+"\nline two") {
		t.Errorf("an agent's error: exit %d, %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "queue", "list", "-address", srv.URL)
	if code != ExitInvalid || rawControl(errOut) || !strings.Contains(errOut, `<title>\x1b]0;pwned\a</title>`) {
		t.Errorf("another server's page: exit %d, %q", code, errOut)
	}
}

// status shows the text it relays escaped too: a Nomad error in the last
// cycle's, a node name a Nomad client registered, a stale series' reason,
// a peer's name. They reached the terminal raw.
func TestStatusCannotDriveTheTerminal(t *testing.T) {
	const esc = "\x1b]0;pwned\x07\x1b[2J\u202e"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.Status{Node: "id-1", State: "Follower", NoLeader: "no leader: " + esc,
			Halted:    "halted " + esc,
			LastCycle: &api.Cycle{Error: "collect: nomad: 500 (" + esc + "\nline two)"},
			Peers:     []api.Peer{{ID: "id-1", Name: "fs" + esc, Address: "10.0.0.1:7576", Suffrage: "voter"}},
			Clients:   []api.ClientAgent{{NodeID: "n-7", NodeName: "client" + esc, Name: "fs-c7"}},
			Stale:     []api.StaleSeries{{Series: "node/n3:cpu", Reason: "unreachable " + esc}},
			Pending:   []api.PendingForecast{{Policy: "web", Series: "dc1/web:memory", Note: "warming " + esc}},
		})
	}))
	t.Cleanup(srv.Close)
	code, out, errOut := runCLI(t, "status", "-address", srv.URL)
	if code != ExitOK || rawControl(out) || strings.Contains(out, "\u202e") {
		t.Fatalf("status: exit %d (%s), output %q", code, errOut, out)
	}
	shown := `\x1b]0;pwned\a\x1b[2J\u202e`
	if n := strings.Count(out, shown); n != 8 {
		t.Errorf("status shows the escaped text %d times, want 8 (no leader, halted, cycle error, node, peer, client, stale, pending):\n%s", n, out)
	}
}
