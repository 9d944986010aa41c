package prometheus

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/internal/promtest"
	"github.com/foreshape/foreshape/plugins/source"
)

// logBuffer is an hclog logger whose lines a test can read; they are also
// shown (through t.Log) when the test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the lines logged at level ("warn", "info"), each as its
// fields.
func (b *logBuffer) lines(level string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(b.buf.String(), "\n") {
		var line map[string]any
		if json.Unmarshal([]byte(l), &line) == nil && line["@level"] == level {
			out = append(out, line)
		}
	}
	return out
}

func newLog(t *testing.T) (hclog.Logger, *logBuffer) {
	b := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", b.buf.String())
		}
	})
	return hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: b, JSONFormat: true}), b
}

// fakeWall is a wall clock a test moves.
type fakeWall struct {
	mu  sync.Mutex
	now time.Time
}

func (w *fakeWall) Now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *fakeWall) Add(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = w.now.Add(d)
}

func localities(n int) []source.Locality {
	out := make([]source.Locality, n)
	for i := range out {
		out[i] = source.Locality{Datacenter: fmt.Sprintf("dc%d", i+1)}
	}
	return out
}

// TestPrometheusFailures puts a proxy that fails as an operator meets it
// between the source and a real Prometheus.
func TestPrometheusFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	// Mostly waits on its own Prometheus (own port, own targets): run
	// beside the others.
	t.Parallel()
	prom, _, now := startProm(t)
	web := source.Locality{Datacenter: "dc2"}

	// A Prometheus that takes longer than the timeout to answer (or a
	// network that drops its packets) holds one collection for about the
	// timeout, not the timeout once per round of queries: once a round
	// of queries has failed that way, the rest are not asked.
	t.Run("SlowAnswersBoundTheCollection", func(t *testing.T) {
		proxy := prom.Proxy(t)
		proxy.Fail(func(w http.ResponseWriter, r *http.Request) {
			// Read the query (a POST) first: only then does the server
			// watch the connection and end r's context when the source
			// gives up, rather than hold the proxy's close 5 s.
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
		const timeout = 300 * time.Millisecond
		log, logs := newLog(t)
		s, err := New(Config{Address: proxy.URL, Queries: map[string]string{source.IOPS: iopsQuery}, Timeout: timeout, Concurrency: 4}, log)
		if err != nil {
			t.Fatal(err)
		}
		locs := localities(40)
		start := time.Now()
		res, err := s.Collect(context.Background(), source.Request{Now: now, Lookback: 10 * time.Second, Step: time.Second, Localities: locs})
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
			t.Errorf("error = %v, want the timeout", err)
		}
		// About twice the timeout; 5 times allows for a loaded host, and
		// asking every query took 10 times.
		if took > 5*timeout {
			t.Errorf("the collection took %v against a Prometheus that does not answer, want at most about twice the timeout (%v)", took, timeout)
		}
		if len(res.Stale) != len(locs) {
			t.Errorf("%d series stale, want all %d", len(res.Stale), len(locs))
		}
		if n := proxy.Requests(); n > 8 {
			t.Errorf("%d queries sent to a Prometheus that does not answer, want at most two rounds of 4", n)
		}
		if got := logs.lines("warn"); len(got) != 0 {
			t.Errorf("the source logged %q; the collector logs a source that fails, once", got)
		}
	})

	// Answers that are not Prometheus's: each error says what came back,
	// and once a round of queries has had one, the rest are not asked.
	for _, tc := range []struct {
		name  string
		fault http.HandlerFunc
		want  string
	}{
		{"500", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "internal error", http.StatusInternalServerError)
		}, "answered 500 Internal Server Error: internal error"},
		{"502FromALoadBalancer", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
		}, "answered 502 Bad Gateway: <html><body><h1>502 Bad Gateway</h1></body></html>"},
		{"404WrongPath", func(w http.ResponseWriter, r *http.Request) {
			http.NotFound(w, r)
		}, "answered 404 Not Found for /api/v1/query_range: 404 page not found"},
		{"401", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
		}, "answered 401 Unauthorized: Unauthorized"},
		{"HTMLWith200", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<!doctype html><html><title>Grafana</title></html>")
		}, `answered 200 OK with text/html; charset=utf-8, not Prometheus's API JSON: <!doctype html><html><title>Grafana</title></html>`},
		{"TruncatedJSON", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{}`)
		}, "answered 200 OK with application/json, not Prometheus's API JSON: {\"status\":\"success\""},
	} {
		t.Run("Answer"+tc.name, func(t *testing.T) {
			proxy := prom.Proxy(t)
			proxy.Fail(tc.fault)
			log, _ := newLog(t)
			s, err := New(Config{Address: proxy.URL, Queries: map[string]string{source.IOPS: iopsQuery}, Concurrency: 2}, log)
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Collect(context.Background(), source.Request{Now: now, Lookback: 10 * time.Second, Step: time.Second, Localities: localities(12)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
			if len(res.Stale) != 12 {
				t.Errorf("%d series stale, want 12", len(res.Stale))
			}
			// One reason for all, naming no query, so that the
			// collector marks them stale with one line.
			for _, st := range res.Stale {
				if st.Reason != res.Stale[0].Reason || strings.Contains(st.Reason, `query "`) {
					t.Errorf("stale reasons %q and %q, want one that names no query", res.Stale[0].Reason, st.Reason)
					break
				}
			}
			if n := proxy.Requests(); n > 4 {
				t.Errorf("%d queries sent to a Prometheus that answers %s, want at most two rounds of 2", n, tc.name)
			}
		})
	}

	// An address with a password (the agent's configuration refuses one,
	// but the source may be given one) keeps it out of its errors.
	t.Run("PasswordNotInErrors", func(t *testing.T) {
		proxy := prom.Proxy(t)
		proxy.Fail(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusBadGateway) })
		s, err := New(Config{Address: strings.Replace(proxy.URL, "://", "://alice:pa55word@", 1), Queries: map[string]string{source.IOPS: iopsQuery}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Collect(context.Background(), source.Request{Now: now, Lookback: 10 * time.Second, Step: time.Second, Localities: []source.Locality{web}})
		if err == nil || strings.Contains(err.Error(), "pa55word") || strings.Contains(fmt.Sprint(res.Stale), "pa55word") {
			t.Errorf("error %v, stale %v; want an error without the password", err, res.Stale)
		}
	})

	// A 429 or 503 with Retry-After is not asked again before that time
	// (10 minutes at most); each collection until then fails at once,
	// saying why.
	for _, tc := range []struct {
		name       string
		code       int
		retryAfter func(now time.Time) string
	}{
		{"429Seconds", http.StatusTooManyRequests, func(time.Time) string { return "120" }},
		{"503Date", http.StatusServiceUnavailable, func(now time.Time) string { return now.Add(120 * time.Second).Format(http.TimeFormat) }},
	} {
		t.Run("RetryAfter"+tc.name, func(t *testing.T) {
			proxy := prom.Proxy(t)
			wall := &fakeWall{now: time.Now().Truncate(time.Second)}
			proxy.Fail(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", tc.retryAfter(wall.Now()))
				http.Error(w, "slow down", tc.code)
			})
			log, _ := newLog(t)
			s, err := New(Config{Address: proxy.URL, Queries: map[string]string{source.IOPS: iopsQuery}, Concurrency: 1, Wall: wall.Now}, log)
			if err != nil {
				t.Fatal(err)
			}
			req := source.Request{Now: now, Lookback: 10 * time.Second, Step: time.Second, Localities: []source.Locality{web}}
			_, first := s.Collect(context.Background(), req)
			if first == nil || !strings.Contains(first.Error(), fmt.Sprint(tc.code)) || !strings.Contains(first.Error(), "Retry-After") {
				t.Fatalf("error = %v, want the %d and its Retry-After", first, tc.code)
			}
			asked := proxy.Requests()
			wall.Add(60 * time.Second)
			// The same error while Prometheus is not asked, so the
			// collector logs it once.
			res, err := s.Collect(context.Background(), req)
			if err == nil || err.Error() != first.Error() {
				t.Errorf("error during Retry-After = %v, want the first again (%v)", err, first)
			}
			if len(res.Stale) != 1 || !strings.Contains(res.Stale[0].Reason, "not asked before") {
				t.Errorf("stale = %v, want the series, not asked", res.Stale)
			}
			if n := proxy.Requests(); n != asked {
				t.Errorf("%d queries sent during Retry-After", n-asked)
			}
			wall.Add(61 * time.Second)
			proxy.Fail(nil)
			res, err = s.Collect(context.Background(), req)
			if err != nil || len(res.Samples) == 0 {
				t.Errorf("after Retry-After: %d samples, error %v; want samples", len(res.Samples), err)
			}
		})
	}
	t.Run("RetryAfterIsBounded", func(t *testing.T) {
		proxy := prom.Proxy(t)
		wall := &fakeWall{now: time.Now()}
		proxy.Fail(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "86400")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		})
		s, err := New(Config{Address: proxy.URL, Queries: map[string]string{source.IOPS: iopsQuery}, Wall: wall.Now}, nil)
		if err != nil {
			t.Fatal(err)
		}
		req := source.Request{Now: now, Lookback: 10 * time.Second, Step: time.Second, Localities: []source.Locality{web}}
		_, _ = s.Collect(context.Background(), req)
		proxy.Fail(nil)
		wall.Add(10*time.Minute + time.Second)
		if res, err := s.Collect(context.Background(), req); err != nil || len(res.Samples) == 0 {
			t.Errorf("10 minutes after a Retry-After of a day: %d samples, error %v; want samples", len(res.Samples), err)
		}
	})

	// A query Prometheus refuses (a policy's PromQL that does not parse)
	// makes its series stale and is logged once, with the query, where
	// it was set and Prometheus's reason; the other queries go on, and
	// the query that works again is said once.
	t.Run("BadQueryLoggedOnceWithItsOrigin", func(t *testing.T) {
		wall := &fakeWall{now: time.Now()}
		log, logs := newLog(t)
		s, err := New(Config{Address: prom.URL, Queries: map[string]string{source.IOPS: iopsQuery}, Wall: wall.Now}, log)
		if err != nil {
			t.Fatal(err)
		}
		const origin = `policy "web" forecast.queries.cpu_demand (web.hcl:7,5-60)`
		if err := s.SetLocalityQueries([]LocalityQuery{{Locality: web, Metric: "cpu_demand", Origin: origin,
			Query: `sum(rate(foreshape_sim_node_cpu_demand_mhz{ {{.Matchers}} }))`}}); err != nil {
			t.Fatal(err)
		}
		req := source.Request{Now: now, Lookback: 10 * time.Second, Step: time.Second, Localities: []source.Locality{web}}
		for range 5 {
			res, err := s.Collect(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Stale) != 1 || res.Stale[0].Series != "dc2:cpu_demand" || !strings.Contains(res.Stale[0].Reason, "expected type range vector") {
				t.Errorf("stale = %+v, want dc2:cpu_demand with Prometheus's reason", res.Stale)
			}
			if len(res.Samples) == 0 {
				t.Error("the other query returned nothing")
			}
			wall.Add(time.Minute)
		}
		got := logs.lines("warn")
		if len(got) != 1 {
			t.Fatalf("5 collections of a bad query logged %d warnings, want 1: %q", len(got), got)
		}
		line := got[0]
		if line["series"] != "dc2:cpu_demand" || line["origin"] != origin {
			t.Errorf("the warning names series %v of %v, want dc2:cpu_demand of %s", line["series"], line["origin"], origin)
		}
		for _, want := range []string{`sum(rate(foreshape_sim_node_cpu_demand_mhz{ datacenter=\"dc2\" }))`, "expected type range vector"} {
			if e, _ := line["error"].(string); !strings.Contains(e, want) {
				t.Errorf("the warning's error %q does not say %q", e, want)
			}
		}
		if err := s.SetLocalityQueries([]LocalityQuery{{Locality: web, Metric: "cpu_demand", Origin: origin,
			Query: `sum(foreshape_sim_node_cpu_demand_mhz{ {{.Matchers}} })`}}); err != nil {
			t.Fatal(err)
		}
		if res, err := s.Collect(context.Background(), req); err != nil || len(res.Stale) != 0 {
			t.Fatalf("the fixed query: stale %v, error %v", res.Stale, err)
		}
		if got := logs.lines("info"); len(got) != 1 || got[0]["series"] != "dc2:cpu_demand" {
			t.Errorf("the fixed query logged %q, want one line saying it answers again", got)
		}
	})

	// A query that selects no series (a metric spelt wrong) is no error
	// and leaves its series without samples: it is said once, at info
	// level, with its origin, and once when it selects some again.
	t.Run("QueryThatSelectsNothingSaidOnce", func(t *testing.T) {
		log, logs := newLog(t)
		s, err := New(Config{Address: prom.URL, Queries: map[string]string{source.IOPS: iopsQuery}}, log)
		if err != nil {
			t.Fatal(err)
		}
		const origin = `policy "web" forecast.queries.cpu_demand (web.hcl:7,5-60)`
		set := func(q string) {
			if err := s.SetLocalityQueries([]LocalityQuery{{Locality: web, Metric: "cpu_demand", Origin: origin, Query: q}}); err != nil {
				t.Fatal(err)
			}
		}
		set(`sum(foreshape_sim_node_cpu_demnd_mhz{ {{.Matchers}} })`)
		req := source.Request{Now: now, Lookback: 10 * time.Second, Step: time.Second, Localities: []source.Locality{web}}
		for range 3 {
			res, err := s.Collect(context.Background(), req)
			if err != nil || len(res.Stale) != 0 {
				t.Fatalf("stale %v, error %v; want neither", res.Stale, err)
			}
		}
		got := logs.lines("info")
		if len(got) != 1 || got[0]["series"] != "dc2:cpu_demand" || got[0]["origin"] != origin ||
			got[0]["query"] != `sum(foreshape_sim_node_cpu_demnd_mhz{ datacenter="dc2" })` {
			t.Fatalf("3 collections of a query that selects nothing logged %v, want one line naming it", got)
		}
		set(`sum(foreshape_sim_node_cpu_demand_mhz{ {{.Matchers}} })`)
		for range 2 {
			if _, err := s.Collect(context.Background(), req); err != nil {
				t.Fatal(err)
			}
		}
		if got := logs.lines("info"); len(got) != 2 || got[1]["series"] != "dc2:cpu_demand" {
			t.Errorf("the query selecting series again logged %v, want one more line", got)
		}
		if got := logs.lines("warn"); len(got) != 0 {
			t.Errorf("warnings %v", got)
		}
	})

	// Prometheus's warnings about a query are logged when they change,
	// not at every collection.
	t.Run("WarningsLoggedWhenTheyChange", func(t *testing.T) {
		proxy := prom.Proxy(t)
		warning := "w1"
		proxy.Fail(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"status":"success","data":{"resultType":"matrix","result":[]},"warnings":[%q]}`, warning)
		})
		log, logs := newLog(t)
		s, err := New(Config{Address: proxy.URL, Queries: map[string]string{source.IOPS: iopsQuery}}, log)
		if err != nil {
			t.Fatal(err)
		}
		req := source.Request{Now: now, Lookback: 10 * time.Second, Step: time.Second, Localities: []source.Locality{web}}
		for i := range 6 {
			if i == 3 {
				warning = "w2"
			}
			if _, err := s.Collect(context.Background(), req); err != nil {
				t.Fatal(err)
			}
		}
		got := logs.lines("warn")
		if len(got) != 2 || got[0]["warning"] != "w1" || got[1]["warning"] != "w2" {
			t.Errorf("6 collections, the warning changed after 3: logged %v, want w1 then w2", got)
		}
	})

	// A series whose query failed while the others answered reads the
	// steps it missed once it answers again: the collector asks from
	// the newest sample of any series (Since).
	t.Run("MissedStepsReadOnceItAnswers", func(t *testing.T) {
		proxy := prom.Proxy(t)
		s, err := New(Config{Address: proxy.URL, Queries: map[string]string{source.IOPS: iopsQuery}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		dc1, dc2 := source.Locality{Datacenter: "dc1"}, source.Locality{Datacenter: "dc2"}
		collect := func(at, since time.Time) map[string]int {
			res, err := s.Collect(context.Background(), source.Request{Now: at, Since: since, Lookback: 10 * time.Second, Step: time.Second,
				Localities: []source.Locality{dc1, dc2}})
			if err != nil {
				t.Fatal(err)
			}
			n := map[string]int{}
			for _, smp := range res.Samples {
				n[smp.Series]++
			}
			return n
		}
		collect(now.Add(10*time.Second), time.Time{})
		proxy.Fail(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if form, _ := url.ParseQuery(string(body)); strings.Contains(form.Get("query"), `"dc1"`) {
				http.Error(w, "overloaded", http.StatusInternalServerError)
				return
			}
			proxy.Pass(w, r)
		})
		if n := collect(now.Add(20*time.Second), now.Add(10*time.Second)); n["dc1:iops"] != 0 || n["dc2:iops"] != 10 {
			t.Fatalf("dc1 failing: %v samples, want dc2's 10 alone", n)
		}
		proxy.Fail(nil)
		if n := collect(now.Add(30*time.Second), now.Add(20*time.Second)); n["dc1:iops"] != 20 || n["dc2:iops"] != 10 {
			t.Errorf("dc1 answering again: %v samples, want dc1's 20 (the 10 it missed) and dc2's 10", n)
		}
		// Caught up, it is asked from Since again.
		if n := collect(now.Add(40*time.Second), now.Add(30*time.Second)); n["dc1:iops"] != 10 || n["dc2:iops"] != 10 {
			t.Errorf("caught up: %v samples, want 10 of each", n)
		}
	})

	// A range longer than Prometheus's 11,000 points per series (a
	// lookback of 25,000 steps) is asked for in parts.
	t.Run("LongRangeIsAskedInParts", func(t *testing.T) {
		proxy := prom.Proxy(t)
		s, err := New(Config{Address: proxy.URL, Queries: map[string]string{source.IOPS: iopsQuery}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Collect(context.Background(), source.Request{Now: now, Lookback: 25_000 * time.Second, Step: time.Second, Localities: []source.Locality{web}})
		if err != nil || len(res.Stale) != 0 {
			t.Fatalf("stale %v, error %v", res.Stale, err)
		}
		if len(res.Samples) == 0 || !res.Samples[len(res.Samples)-1].Time.Equal(now) {
			t.Errorf("%d samples, want the last at %v", len(res.Samples), now)
		}
		if n := proxy.Requests(); n != 3 {
			t.Errorf("%d queries for 25,000 steps, want 3", n)
		}
	})

	// After a long outage (25,000 steps since the last sample) the
	// read-back is the last MaxPoints steps, in one query: its memory
	// stays bounded however long Prometheus was away.
	t.Run("ReadBackIsBounded", func(t *testing.T) {
		proxy := prom.Proxy(t)
		s, err := New(Config{Address: proxy.URL, Queries: map[string]string{source.IOPS: iopsQuery}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Collect(context.Background(), source.Request{Now: now, Since: now.Add(-25_000 * time.Second), Step: time.Second, Localities: []source.Locality{web}})
		if err != nil || len(res.Stale) != 0 || len(res.Samples) == 0 {
			t.Fatalf("%d samples, stale %v, error %v", len(res.Samples), res.Stale, err)
		}
		first, last := res.Samples[0].Time, res.Samples[len(res.Samples)-1].Time
		if want := now.Add(-(MaxPoints - 1) * time.Second); first.Before(want) || !last.Equal(now) {
			t.Errorf("samples from %v to %v, want none before %v and the last at %v", first, last, want, now)
		}
		if n := proxy.Requests(); n != 1 {
			t.Errorf("%d queries, want 1", n)
		}
	})

	// An https:// address whose certificate the host's roots do not vouch
	// for fails every query, saying so.
	t.Run("CertificateFromAnotherCA", func(t *testing.T) {
		target, _ := url.Parse(prom.URL)
		tlsSrv := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
		t.Cleanup(tlsSrv.Close)
		s, err := New(Config{Address: tlsSrv.URL, Queries: map[string]string{source.IOPS: iopsQuery}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Collect(context.Background(), source.Request{Now: now, Lookback: 10 * time.Second, Step: time.Second, Localities: []source.Locality{web}})
		if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") || !strings.Contains(err.Error(), tlsSrv.URL) ||
			!strings.Contains(err.Error(), "SSL_CERT_FILE") {
			t.Errorf("error = %v, want the unknown authority, the address and how to trust the CA", err)
		}
		// The agent's environment names the CA in SSL_CERT_FILE: a
		// process started with it trusts the server (the host's roots are
		// read once per process, so the check runs in a new one).
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCollectInAChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+caFile, "FORESHAPE_TEST_PROMETHEUS="+tlsSrv.URL,
			"FORESHAPE_TEST_NOW="+now.Format(time.RFC3339Nano))
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "samples from Prometheus") {
			t.Errorf("with SSL_CERT_FILE naming its CA: %v\n%s", err, out)
		}
		// The same server, with a client that trusts its CA, answers.
		s, err = New(Config{Address: tlsSrv.URL, Queries: map[string]string{source.IOPS: iopsQuery}, HTTPClient: tlsSrv.Client()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := s.Collect(context.Background(), source.Request{Now: now, Lookback: 10 * time.Second, Step: time.Second, Localities: []source.Locality{web}}); err != nil || len(res.Samples) == 0 {
			t.Errorf("with the CA: %d samples, error %v", len(res.Samples), err)
		}
	})
}

// TestNonFiniteAndSeveralSeries reads series a real Prometheus scraped:
// NaN and ±Inf are not numbers the store can keep, and a sum over several
// series one of which is not finite is not known, so no sample is made of
// them (the series says why); several finite series are summed per step.
func TestNonFiniteAndSeveralSeries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	// Mostly waits on its own Prometheus (own port, own targets): run
	// beside the others.
	t.Parallel()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `# TYPE t_ratio gauge
t_ratio{datacenter="dc1",node="a"} 1
t_ratio{datacenter="dc1",node="b"} NaN
t_ratio{datacenter="dc2",node="c"} 2
t_ratio{datacenter="dc2",node="d"} 3
t_ratio{datacenter="dc3",node="e"} +Inf
t_ratio{datacenter="dc4",node="f"} -Inf
`)
	}))
	t.Cleanup(target.Close)
	prom := promtest.Start(t, promtest.Options{ScrapeInterval: 200 * time.Millisecond}, promtest.Target{Job: "t", Addr: strings.TrimPrefix(target.URL, "http://")})
	prom.WaitForSeries(t, "t_ratio", time.Time{}, 30*time.Second)
	time.Sleep(time.Second)
	wall := &fakeWall{now: time.Now()}
	log, logs := newLog(t)
	s, err := New(Config{Address: prom.URL, Queries: map[string]string{"ratio": `t_ratio{ {{.Matchers}} }`}, Wall: wall.Now}, log)
	if err != nil {
		t.Fatal(err)
	}
	req := source.Request{Now: time.Now(), Lookback: 3 * time.Second, Step: 200 * time.Millisecond, Localities: localities(4)}
	for range 3 {
		res, err := s.Collect(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		values := map[string][]float64{}
		for _, smp := range res.Samples {
			values[smp.Series] = append(values[smp.Series], smp.Value)
		}
		if v := values["dc2:ratio"]; len(v) == 0 || v[len(v)-1] != 5 {
			t.Errorf("dc2 (2 and 3) = %v, want their sum, 5", v)
		}
		for _, dc := range []string{"dc1", "dc3", "dc4"} {
			if v := values[dc+":ratio"]; len(v) > 0 {
				t.Errorf("%s = %v, want no sample of a sum that is not finite", dc, v)
			}
		}
		stale := map[string]string{}
		for _, st := range res.Stale {
			stale[st.Series] = st.Reason
		}
		for _, dc := range []string{"dc1", "dc3", "dc4"} {
			if r := stale[dc+":ratio"]; !strings.Contains(r, "not a finite number") {
				t.Errorf("%s stale reason %q, want one saying Prometheus answered no finite number", dc, r)
			}
		}
		if _, ok := stale["dc2:ratio"]; ok {
			t.Errorf("dc2 is stale: %v", res.Stale)
		}
		wall.Add(time.Minute)
	}
	if got := logs.lines("warn"); len(got) != 3 {
		t.Errorf("3 collections of 3 series without a finite number logged %d warnings, want one for each: %q", len(got), got)
	}
}

// TestCollectInAChild is TestPrometheusFailures' child process: it
// collects from FORESHAPE_TEST_PROMETHEUS at FORESHAPE_TEST_NOW with the
// environment it was started with, and says how many samples it got.
func TestCollectInAChild(t *testing.T) {
	addr := os.Getenv("FORESHAPE_TEST_PROMETHEUS")
	if addr == "" {
		t.Skip("run by TestPrometheusFailures")
	}
	now, err := time.Parse(time.RFC3339Nano, os.Getenv("FORESHAPE_TEST_NOW"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Address: addr, Queries: map[string]string{source.IOPS: iopsQuery}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Collect(context.Background(), source.Request{Now: now, Lookback: 10 * time.Second, Step: time.Second,
		Localities: []source.Locality{{Datacenter: "dc2"}}})
	if err != nil || len(res.Samples) == 0 {
		t.Fatalf("%d samples, error %v", len(res.Samples), err)
	}
	fmt.Printf("%d samples from Prometheus\n", len(res.Samples))
}

// TestSeriesWhoseLabelsChangeOrThatEnd reads a series a real Prometheus
// scrapes whose labels change (a new version of an exporter) and that then
// ends (its target stops exposing it): a query without an aggregation
// returns the old and the new series, summed per step, but Prometheus's
// stale markers end the old one at the change, so no step counts both (12);
// and the series ends at its last scrape, not five minutes later (the
// lookback an instant query would reuse its last value over). The margins
// of a second allow for a scrape late under load.
func TestSeriesWhoseLabelsChangeOrThatEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	// Mostly waits on its own Prometheus (own port, own targets): run
	// beside the others.
	t.Parallel()
	var (
		mu    sync.Mutex
		phase = "v1"
	)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch phase {
		case "v1":
			fmt.Fprint(w, "t_g{datacenter=\"dc1\",version=\"1\"} 5\n")
		case "v2":
			fmt.Fprint(w, "t_g{datacenter=\"dc1\",version=\"2\"} 7\n")
		}
	}))
	t.Cleanup(target.Close)
	prom := promtest.Start(t, promtest.Options{ScrapeInterval: 200 * time.Millisecond}, promtest.Target{Job: "t", Addr: strings.TrimPrefix(target.URL, "http://")})
	prom.WaitForSeries(t, "t_g", time.Time{}, 30*time.Second)
	begin := time.Now()
	set := func(p string) time.Time {
		time.Sleep(2 * time.Second)
		mu.Lock()
		defer mu.Unlock()
		phase = p
		return time.Now()
	}
	changed := set("v2")
	ended := set("gone")
	time.Sleep(2 * time.Second)

	s, err := New(Config{Address: prom.URL, Queries: map[string]string{"g": `t_g{ {{.Matchers}} }`}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	res, err := s.Collect(context.Background(), source.Request{Now: now, Since: begin, Step: 100 * time.Millisecond,
		Localities: []source.Locality{{Datacenter: "dc1"}}})
	if err != nil {
		t.Fatal(err)
	}
	var fives, sevens int
	for _, smp := range res.Samples {
		switch {
		case smp.Value == 5 && !smp.Time.After(changed.Add(time.Second)):
			fives++
		case smp.Value == 7 && smp.Time.After(changed) && !smp.Time.After(ended.Add(time.Second)):
			sevens++
		default:
			t.Errorf("%v at %v (the change at %v, the end at %v)", smp.Value, smp.Time.Format("15:04:05.000"),
				changed.Format("15:04:05.000"), ended.Format("15:04:05.000"))
		}
	}
	if fives < 10 || sevens < 10 {
		t.Errorf("%d steps of the old series and %d of the new, want 10 or more of each", fives, sevens)
	}
}
