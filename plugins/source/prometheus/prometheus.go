// Package prometheus is the metric source that reads a Prometheus server
// with range queries: IOPS from node_exporter-style metrics (Nomad reports
// none), or any other series an operator names as a PromQL template.
//
// It only reads from Prometheus; it must never write to it, and it never
// reuses a value it could not refresh: a failed query makes its series
// stale for that collection. What it keeps between collections is per
// series: what it has logged, and the time of the newest sample it
// returned, so that a series whose query failed reads the steps it missed.
package prometheus

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"
	"unicode"

	"github.com/hashicorp/go-hclog"
	promapi "github.com/prometheus/client_golang/api"
	"github.com/prometheus/common/model"

	"github.com/foreshape/foreshape/internal/failing"
	"github.com/foreshape/foreshape/internal/querytmpl"
	"github.com/foreshape/foreshape/plugins/source"
)

// DefaultIOPSQuery sums disk reads and writes per second over the nodes of a
// locality, from node_exporter's counters. Prometheus must attach the
// datacenter, node_pool and node_class labels (through relabelling) for the
// locality matchers to select anything.
const DefaultIOPSQuery = `sum(rate(node_disk_reads_completed_total{ {{.Matchers}} }[5m])) + sum(rate(node_disk_writes_completed_total{ {{.Matchers}} }[5m]))`

// DefaultIOPSReadQuery and DefaultIOPSWriteQuery read a locality's disk
// reads and writes per second apart, from the same counters, so that its
// workload can be called read- or write-heavy.
const (
	DefaultIOPSReadQuery  = `sum(rate(node_disk_reads_completed_total{ {{.Matchers}} }[5m]))`
	DefaultIOPSWriteQuery = `sum(rate(node_disk_writes_completed_total{ {{.Matchers}} }[5m]))`
)

// DefaultQueries are the source-wide queries: IOPS, and reads and writes
// per second.
func DefaultQueries() map[string]string {
	return map[string]string{
		source.IOPS:      DefaultIOPSQuery,
		source.IOPSRead:  DefaultIOPSReadQuery,
		source.IOPSWrite: DefaultIOPSWriteQuery,
	}
}

// Labels names the Prometheus labels that carry a node's locality.
type Labels struct {
	Datacenter string
	NodePool   string
	NodeClass  string
}

// DefaultLabels are the label names foreshape expects.
var DefaultLabels = Labels{Datacenter: "datacenter", NodePool: "node_pool", NodeClass: "node_class"}

// Config configures the source.
type Config struct {
	// Address of the Prometheus server, e.g. http://127.0.0.1:9090.
	Address string
	// Queries maps a metric name (source.IOPS, …) to a PromQL template. The
	// template sees .Matchers, the label matchers of the locality
	// (`datacenter="dc1",node_pool="web"`), and .Locality. Nil means
	// DefaultQueries().
	Queries map[string]string
	// Labels are the locality label names; zero means DefaultLabels.
	Labels Labels
	// Concurrency bounds the queries in flight; zero means 4.
	Concurrency int
	// Timeout bounds each query; zero means 10s.
	Timeout time.Duration
	// HTTPClient, when set, is used for requests (TLS, proxies); TLS is
	// then refused.
	HTTPClient *http.Client
	// TLS, when set, is how an https:// Address is dialled: the CAs its
	// certificate is checked against (RootCAs nil: the host's), a client
	// certificate, the name checked (ServerName empty: Address's host).
	TLS *tls.Config
	// CAFile names the file TLS's CAs came from, for the message of a
	// certificate they do not vouch for; empty: the host's CAs.
	CAFile string
	// TokenFile holds a bearer token for every request to Address's host,
	// read again for each request (ReadCredential), so that a token
	// rotated in the file is used at once.
	TokenFile string
	// Username and PasswordFile are basic auth for every request to
	// Address's host, the password read again for each request. Not with
	// TokenFile.
	Username, PasswordFile string
	// Headers are sent with every request to Address's host.
	Headers map[string]string
	// Origins says where each of Queries was set, for the log line of a
	// query that fails ("prometheus.iops_query"); a metric without one is
	// the source's default query.
	Origins map[string]string
	// Wall returns the wall time failures are logged by and a Retry-After
	// is counted in; nil means time.Now.
	Wall func() time.Time
	// MaxAnswer bounds an answer's body, in bytes; zero means
	// DefaultMaxAnswer. A larger answer fails its query.
	MaxAnswer int64
}

// DefaultMaxAnswer bounds an answer's body: a query of one locality over
// MaxPoints steps answers a few hundred KB a series it selects, so a
// larger answer is a query that selects far more series than it should
// (one that forgot its locality's matchers), which the source would
// otherwise read whole into memory.
const DefaultMaxAnswer = 64 << 20

// LocalityQuery is a query one locality's policy names: it reads Metric
// for Locality, in addition to (or, for a metric of Config.Queries, instead
// of) the source-wide queries.
type LocalityQuery struct {
	Locality source.Locality
	Metric   string
	Query    string
	// Origin says where the query was set, for the log line of a query
	// that fails: `policy "web" forecast.queries.cpu (web.hcl:12,3-40)`.
	Origin string
}

// MaxPoints is the most steps one range query asks for: Prometheus
// refuses more than 11,000 points per series ("exceeded maximum
// resolution"), so a longer range (a Prometheus that was down for a day at
// a 10 s step) is asked in parts.
const MaxPoints = 10_000

// MaxRetryAfter bounds how long a 429's or 503's Retry-After keeps the
// source from asking Prometheus again.
const MaxRetryAfter = 10 * time.Minute

// Source reads series from Prometheus.
type Source struct {
	client  promapi.Client
	creds   *credentials
	caFile  string // Config.CAFile
	hasCert bool   // a client certificate is presented
	https   bool   // the address is https://
	addr    string // the address, for messages
	queries map[string]*query
	metrics []string
	labels  Labels
	conc    int
	timeout time.Duration
	wall    func() time.Time
	log     hclog.Logger

	mu       sync.Mutex
	local    map[string]map[string]*query // locality → metric → query
	retryAt  time.Time                    // not asked before (a Retry-After)
	retryErr error                        // the answer that asked for it
	logged   map[string]*seriesLog        // series → what was logged of it, its newest sample
}

// query is a parsed query template and where it was set.
type query struct {
	tmpl   *template.Template
	origin string
}

var _ source.Source = (*Source)(nil)

// New returns a Prometheus source. It fails when the address or a query
// template is invalid; it does not contact the server.
func New(cfg Config, log hclog.Logger) (*Source, error) {
	if cfg.Address == "" {
		return nil, errors.New("prometheus: address is empty")
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.TokenFile != "" && (cfg.Username != "" || cfg.PasswordFile != "") {
		return nil, errors.New("prometheus: a bearer token and basic auth are both set; a request carries one Authorization header")
	}
	if (cfg.Username == "") != (cfg.PasswordFile == "") {
		return nil, errors.New("prometheus: basic auth needs both a user name and a password file")
	}
	hc := http.DefaultClient
	switch {
	case cfg.HTTPClient != nil && cfg.TLS != nil:
		return nil, errors.New("prometheus: TLS is set beside HTTPClient, whose transport it would not reach")
	case cfg.HTTPClient != nil:
		hc = cfg.HTTPClient
	case cfg.TLS != nil:
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = cfg.TLS.Clone()
		// HTTP/1.1: Go's HTTP/2 client says only that a connection
		// "could not be established", not why (a client certificate
		// Prometheus refused); one query at a time per connection is
		// what the source asks anyway.
		t.ForceAttemptHTTP2 = false
		hc = &http.Client{Transport: t}
	}
	limit := cfg.MaxAnswer
	if limit <= 0 {
		limit = DefaultMaxAnswer
	}
	base, err := url.Parse(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	creds := &credentials{next: hc.Transport, host: base.Host, tokenFile: cfg.TokenFile,
		username: cfg.Username, passwordFile: cfg.PasswordFile, headers: cfg.Headers}
	limited := *hc
	limited.Transport = &boundedAnswers{next: creds, max: limit}
	client, err := promapi.NewClient(promapi.Config{Address: cfg.Address, Client: &limited})
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	queries := cfg.Queries
	if queries == nil {
		queries = DefaultQueries()
	}
	s := &Source{
		client:  client,
		creds:   creds,
		caFile:  cfg.CAFile,
		hasCert: cfg.TLS != nil && (len(cfg.TLS.Certificates) > 0 || cfg.TLS.GetClientCertificate != nil),
		https:   base.Scheme == "https",
		addr:    "Prometheus at " + redact(cfg.Address),
		queries: map[string]*query{},
		labels:  cfg.Labels,
		conc:    cfg.Concurrency,
		timeout: cfg.Timeout,
		wall:    cfg.Wall,
		log:     log.Named("prometheus"),
		logged:  map[string]*seriesLog{},
	}
	if s.wall == nil {
		s.wall = time.Now
	}
	if s.labels == (Labels{}) {
		s.labels = DefaultLabels
	}
	if s.conc <= 0 {
		s.conc = 4
	}
	if s.timeout <= 0 {
		s.timeout = 10 * time.Second
	}
	for metric, q := range queries {
		tmpl, err := querytmpl.Parse(metric, q)
		if err != nil {
			return nil, fmt.Errorf("prometheus: query for %s: %w", metric, err)
		}
		origin := cfg.Origins[metric]
		if origin == "" {
			origin = "the Prometheus source's default " + metric + " query"
		}
		s.queries[metric] = &query{tmpl: tmpl, origin: origin}
		s.metrics = append(s.metrics, metric)
	}
	sort.Strings(s.metrics)
	return s, nil
}

// Name implements source.Source.
func (s *Source) Name() string { return "prometheus" }

// SetLocalityQueries replaces the per-locality queries (on a policy
// reload). It fails, changing nothing, when a template does not parse.
func (s *Source) SetLocalityQueries(qs []LocalityQuery) error {
	local := map[string]map[string]*query{}
	for _, q := range qs {
		tmpl, err := querytmpl.Parse(q.Metric, q.Query)
		if err != nil {
			return fmt.Errorf("prometheus: query for %s of %s: %w", q.Metric, q.Locality, err)
		}
		if local[q.Locality.String()] == nil {
			local[q.Locality.String()] = map[string]*query{}
		}
		origin := q.Origin
		if origin == "" {
			origin = fmt.Sprintf("the %s query of %s", q.Metric, q.Locality)
		}
		local[q.Locality.String()][q.Metric] = &query{tmpl: tmpl, origin: origin}
	}
	s.mu.Lock()
	s.local = local
	s.mu.Unlock()
	return nil
}

// Matchers renders the label matchers that select a locality's nodes.
func (s *Source) Matchers(l source.Locality) string {
	var parts []string
	add := func(label, value string) {
		if value != "" && value != "*" && label != "" {
			parts = append(parts, fmt.Sprintf("%s=%q", label, value))
		}
	}
	add(s.labels.Datacenter, l.Datacenter)
	add(s.labels.NodePool, l.NodePool)
	add(s.labels.NodeClass, l.NodeClass)
	return strings.Join(parts, ",")
}

// Collect implements source.Source: one range query per locality and metric,
// from Since (exclusive) or Now-Lookback to Now at Step, asked in parts of
// at most MaxPoints steps.
//
// A query Prometheus refuses (PromQL that does not parse or evaluate) makes
// its series stale and is logged once, with the query and where it was set
// (its Origin), while the others go on. A failure of Prometheus itself (no
// answer within the timeout, a connection refused, a 5xx, 429, 404 or 401,
// an answer that is not its API's JSON) makes every series stale for this
// collection and is returned, not logged: once a round of queries (one per
// Concurrency) has failed that way in a row, the rest are not asked, so a
// Prometheus that does not answer holds a collection for about twice the
// timeout at most. After a 429 or 503 with Retry-After, Prometheus is not
// asked again until then (MaxRetryAfter at most).
func (s *Source) Collect(ctx context.Context, req source.Request) (source.Result, error) {
	if err := ctx.Err(); err != nil {
		return source.Result{}, err
	}
	step := req.Step
	if step <= 0 {
		step = time.Minute
	}
	start := req.Now.Add(-req.Lookback)
	if req.Lookback <= 0 {
		start = req.Now.Add(-10 * step)
	}
	end := req.Now.Truncate(step)
	if !req.Since.IsZero() {
		start = req.Since.Add(step).Truncate(step)
		if !start.After(req.Since) {
			start = start.Add(step)
		}
		// After a long outage, the last MaxPoints steps at most (about a
		// week at a minute's step), as for a series that missed steps
		// below: the read-back, and the entry the agent replicates it in,
		// stay bounded however long Prometheus was away.
		if limit := end.Add(-time.Duration(MaxPoints-1) * step); start.Before(limit) {
			start = limit
		}
	}

	type job struct {
		loc    source.Locality
		metric string
		series string
		q      *query
		start  time.Time
	}
	s.mu.Lock()
	local := s.local
	retryAt, retryErr := s.retryAt, s.retryErr
	s.mu.Unlock()
	var jobs []job
	for _, l := range req.Localities {
		own := local[l.String()]
		for _, m := range s.metrics {
			if own[m] == nil {
				jobs = append(jobs, job{l, m, source.SeriesName(l.String(), m), s.queries[m], start})
			}
		}
		for _, m := range sortedMetrics(own) {
			jobs = append(jobs, job{l, m, source.SeriesName(l.String(), m), own[m], start})
		}
	}
	forgetSeries(s, jobs, func(j job) string { return j.series })
	if !req.Since.IsZero() {
		// A series whose query failed (or was not asked) while the others
		// answered is behind Since: it is asked from its own last sample,
		// so that the steps it missed are read once it answers again (up
		// to MaxPoints steps back). A series that answered with nothing
		// (it ended) is not: it would be asked for a long range for good.
		s.mu.Lock()
		for i, j := range jobs {
			if l := s.logged[j.series]; l != nil && l.missed && !l.last.IsZero() && l.last.Before(req.Since) {
				from := l.last.Add(step).Truncate(step)
				if !from.After(l.last) {
					from = from.Add(step)
				}
				if limit := end.Add(-time.Duration(MaxPoints-1) * step); from.Before(limit) {
					from = limit
				}
				jobs[i].start = from
			}
		}
		s.mu.Unlock()
	}
	jobs = slices.DeleteFunc(jobs, func(j job) bool { return j.start.After(end) })
	if len(jobs) == 0 {
		return source.Result{}, nil // nothing new since the last collection
	}
	var res source.Result
	if now := s.wall(); now.Before(retryAt) {
		// The same error as the answer that asked for the wait, so that
		// the collector logs a Prometheus that keeps asking once.
		reason := fmt.Sprintf("not asked before %s (Retry-After): %v", retryAt.UTC().Format(time.RFC3339), retryErr)
		for _, j := range jobs {
			res.Stale = append(res.Stale, source.Stale{Series: j.series, Reason: reason})
			s.sampled(j.series, time.Time{}, true)
		}
		return res, fmt.Errorf("prometheus: every query failed: %w", retryErr)
	}
	var (
		mu        sync.Mutex
		failed    int   // queries that returned no samples for an error
		inARow    int   // failures of Prometheus itself since the last answer
		serverErr error // Prometheus's first failure, which names no query
		down      error // the failure that stopped the asking
		queryErrs = make([]error, len(jobs))
		wg        sync.WaitGroup
		sem       = make(chan struct{}, s.conc)
		notAsked  []job
	)
	for i, j := range jobs {
		sem <- struct{}{}
		mu.Lock()
		stop := down
		mu.Unlock()
		if stop != nil || ctx.Err() != nil {
			<-sem
			notAsked = append(notAsked, j)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			samples, err := s.query(ctx, j.q, j.loc, j.series, j.start, end, step)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
			}
			var fe *failure
			switch {
			case errors.As(err, &fe) && fe.server:
				// The reason names no query: every series a failing
				// Prometheus leaves stale has the same, so the
				// collector marks them with one line.
				res.Stale = append(res.Stale, source.Stale{Series: j.series, Reason: fe.err.Error()})
				s.sampled(j.series, time.Time{}, true)
				inARow++
				if serverErr == nil {
					serverErr = fe.err
				}
				if inARow >= s.conc || !fe.retryAt.IsZero() {
					down = fe.err
				}
				if !fe.retryAt.IsZero() {
					s.mu.Lock()
					s.retryAt, s.retryErr = fe.retryAt, fe.err
					s.mu.Unlock()
				}
				return
			case err != nil:
				res.Stale = append(res.Stale, source.Stale{Series: j.series, Reason: err.Error()})
				s.sampled(j.series, time.Time{}, true)
				inARow = 0
				queryErrs[i] = err
				s.said(j.series, j.q, err)
				return
			}
			inARow = 0
			s.said(j.series, j.q, nil)
			var newest time.Time
			for _, smp := range samples {
				if smp.Time.Before(j.start) {
					continue
				}
				res.Samples = append(res.Samples, smp)
				newest = smp.Time
			}
			s.sampled(j.series, newest, false)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return source.Result{}, err
	}
	for _, j := range notAsked {
		failed++
		res.Stale = append(res.Stale, source.Stale{Series: j.series, Reason: down.Error()}) // not asked, for the same reason
		s.sampled(j.series, time.Time{}, true)
	}
	res.Sort()
	if failed > 0 && failed == len(jobs) {
		// The same words every collection Prometheus fails alike, so
		// that the collector logs it once.
		err := serverErr
		for _, qe := range queryErrs {
			if err == nil && qe != nil {
				err = qe
			}
		}
		return res, fmt.Errorf("prometheus: every query failed: %w", err)
	}
	return res, nil
}

// ReadCredential reads a token or password from the file at path, as
// the source does for every request: the file's text less the white
// space around it (the newline at its end). It fails for a file it
// cannot read, one that is empty, and one whose credential spans lines
// (it would not fit in a header).
func ReadCredential(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(b))
	switch {
	case v == "":
		return "", &os.PathError{Op: "read", Path: path, Err: &CredentialError{"the file is empty"}}
	case strings.ContainsAny(v, "\r\n\x00"):
		return "", &os.PathError{Op: "read", Path: path, Err: &CredentialError{"the file holds more than one line, where it must hold the credential alone"}}
	}
	return v, nil
}

// ReadToken reads a token from the file at path as ReadCredential does,
// and also refuses a control character in it (a byte such as 0x01 pasted
// or left in the file): a token is sent as it is in a header, which cannot
// carry one, so every request would fail. A password is not (basic auth
// encodes it), so ReadCredential takes one.
func ReadToken(path string) (string, error) {
	v, err := ReadCredential(path)
	if err != nil {
		return "", err
	}
	if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
		return "", &os.PathError{Op: "read", Path: path, Err: &CredentialError{
			fmt.Sprintf("the token holds a control character (%U at byte %d), which no request header carries", []rune(v[i:])[0], i)}}
	}
	return v, nil
}

// CredentialError is ReadCredential's error for a file it could read
// that holds no credential: why.
type CredentialError struct{ Why string }

func (e *CredentialError) Error() string { return e.Why }

// credentials is a RoundTripper that adds the configured headers and the
// bearer token or basic auth, their files read for each request, to every
// request to Prometheus's host, and to no other (a redirect elsewhere
// carries none of them).
type credentials struct {
	next         http.RoundTripper // nil: http.DefaultTransport
	host         string            // Prometheus's host:port, as in its address
	tokenFile    string
	username     string
	passwordFile string
	headers      map[string]string
}

func (c *credentials) RoundTrip(req *http.Request) (*http.Response, error) {
	next := c.next
	if next == nil {
		next = http.DefaultTransport
	}
	if req.URL.Host != c.host || (c.tokenFile == "" && c.username == "" && len(c.headers) == 0) {
		return next.RoundTrip(req)
	}
	out := req.Clone(req.Context())
	for k, v := range c.headers {
		out.Header.Set(k, v)
	}
	switch {
	case c.tokenFile != "":
		tok, err := ReadToken(c.tokenFile)
		if err != nil {
			closeBody(req)
			return nil, fmt.Errorf("cannot read the bearer token (prometheus.token_file): %w", err)
		}
		out.Header.Set("Authorization", "Bearer "+tok)
	case c.username != "":
		pw, err := ReadCredential(c.passwordFile)
		if err != nil {
			closeBody(req)
			return nil, fmt.Errorf("cannot read the basic auth password (prometheus.password_file): %w", err)
		}
		out.SetBasicAuth(c.username, pw)
	}
	return next.RoundTrip(out)
}

// carried says which credentials the source's requests carry, for the
// message of a 401 or 403.
func (c *credentials) carried() string {
	switch {
	case c.tokenFile != "":
		return "the request carried the bearer token of prometheus.token_file " + c.tokenFile
	case c.username != "":
		return fmt.Sprintf("the request carried basic auth as %q, with the password of prometheus.password_file %s", c.username, c.passwordFile)
	}
	return "the request carried no credentials: set prometheus.token_file, or prometheus.username and prometheus.password_file"
}

// closeBody closes a request's body, as a RoundTripper must when it
// fails.
func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// boundedAnswers is a RoundTripper whose answers' bodies fail once they
// pass max bytes, so that no answer is read whole into memory past it.
type boundedAnswers struct {
	next http.RoundTripper // nil: http.DefaultTransport
	max  int64
}

func (b *boundedAnswers) RoundTrip(req *http.Request) (*http.Response, error) {
	next := b.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &boundedBody{ReadCloser: resp.Body, left: b.max, max: b.max}
	return resp, nil
}

// boundedBody fails a read past max bytes.
type boundedBody struct {
	io.ReadCloser
	left, max int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly max bytes from a longer one.
		var one [1]byte
		n, err := b.ReadCloser.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("the answer is larger than %d bytes (a query that selects far more series than its locality's?)", b.max)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

func sortedMetrics(m map[string]*query) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// failure is a query that failed, and whether Prometheus itself failed
// (server) rather than refused the query. err does not name the query, so
// that Prometheus's failure reads the same whichever query met it.
type failure struct {
	query   string
	err     error
	server  bool
	retryAt time.Time // a 429's or 503's Retry-After; zero without one
}

func (f *failure) Error() string { return fmt.Sprintf("query %q: %v", f.query, f.err) }
func (f *failure) Unwrap() error { return f.err }

// query reads one series, its range asked in parts of at most MaxPoints
// steps. A step where Prometheus answered NaN or ±Inf (for any of the
// series it returned) gets no sample; when no step has one, the query
// fails saying so.
func (s *Source) query(ctx context.Context, q *query, loc source.Locality, series string, start, end time.Time, step time.Duration) ([]source.Sample, error) {
	var text bytes.Buffer
	if err := q.tmpl.Execute(&text, querytmpl.Data(s.Matchers(loc), loc.String())); err != nil {
		return nil, fmt.Errorf("render query: %w", err)
	}
	sums := map[int64]float64{}
	unknown := map[int64]bool{} // steps with a value that is not finite
	var warnings []string
	for from := start; !from.After(end); {
		to := from.Add(time.Duration(MaxPoints-1) * step)
		if to.After(end) {
			to = end
		}
		matrix, warns, err := s.queryRange(ctx, text.String(), from, to, step)
		if err != nil {
			return nil, err
		}
		warnings = append(warnings, warns...)
		// Several result series (a template without an aggregation) are
		// summed per timestamp, so the locality gets one value per step.
		for _, ss := range matrix {
			for _, p := range ss.Values {
				ms := int64(p.Timestamp)
				v := float64(p.Value)
				if math.IsNaN(v) || math.IsInf(v, 0) {
					unknown[ms] = true
					continue
				}
				sums[ms] += v
			}
		}
		from = to.Add(step)
	}
	s.warned(series, text.String(), warnings)
	s.selected(series, q, text.String(), len(sums)+len(unknown) > 0)
	out := make([]source.Sample, 0, len(sums))
	for ms, v := range sums {
		if !unknown[ms] {
			out = append(out, source.Sample{Series: series, Time: time.UnixMilli(ms).UTC(), Value: v})
		}
	}
	if len(out) == 0 && len(unknown) > 0 {
		return nil, fmt.Errorf("query %q: Prometheus answered a value that is not a finite number (NaN, +Inf or -Inf) at each of its %d steps; a sum over several series holding one is not known either", text.String(), len(unknown))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// apiResponse is Prometheus's HTTP API envelope.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

// queryRange asks Prometheus for one range. Its errors are *failure.
func (s *Source) queryRange(ctx context.Context, q string, start, end time.Time, step time.Duration) (model.Matrix, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	args := url.Values{
		"query": {q},
		"start": {formatTime(start)},
		"end":   {formatTime(end)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	u := s.client.URL("/api/v1/query_range", nil)
	do := func(method string) (*http.Response, []byte, error) {
		var req *http.Request
		var err error
		if method == http.MethodPost {
			req, err = http.NewRequest(method, u.String(), strings.NewReader(args.Encode()))
			if err == nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
		} else {
			g := *u
			g.RawQuery = args.Encode()
			req, err = http.NewRequest(method, g.String(), nil)
		}
		if err != nil {
			return nil, nil, err
		}
		return s.client.Do(ctx, req)
	}
	resp, body, err := do(http.MethodPost)
	if err == nil && (resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented) {
		// A proxy in front of Prometheus that takes only GET.
		resp, body, err = do(http.MethodGet)
	}
	if err != nil {
		var unknownCA x509.UnknownAuthorityError
		var otherName x509.HostnameError
		var remote *net.OpError
		alert := errors.As(err, &remote) && remote.Op == "remote error" && strings.Contains(remote.Err.Error(), "certificate")
		switch {
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
			err = fmt.Errorf("%s did not answer within %v: %w", s.addr, s.timeout, context.DeadlineExceeded)
		case errors.As(err, &otherName):
			err = fmt.Errorf("%w (foreshape checks Prometheus's certificate for prometheus.tls_server_name, or else the address's host)", err)
		case errors.As(err, &unknownCA) && s.caFile != "":
			err = fmt.Errorf("%w (foreshape checks Prometheus's certificate against prometheus.ca_file %s)", err, s.caFile)
		case errors.As(err, &unknownCA):
			err = fmt.Errorf("%w (foreshape checks Prometheus's certificate against the host's trusted CAs: set prometheus.ca_file to its CA; SSL_CERT_FILE or SSL_CERT_DIR in the agent's environment name others)", err)
		case s.https && (alert || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)):
			// A Prometheus that requires a client certificate checks it
			// after TLS 1.3's handshake: its alert comes when the request
			// is sent, or the connection is closed (reset, a broken pipe)
			// before the alert is read. Go's client sends no certificate
			// that none of the CAs the server names signed.
			who := "Prometheus "
			if !alert {
				who = "Prometheus closed the connection, as it does when it "
			}
			if !s.hasCert {
				err = fmt.Errorf("%w (%srequires a client certificate: set prometheus.cert_file and prometheus.key_file)", err, who)
			} else {
				err = fmt.Errorf("%w (%srefuses the client certificate: prometheus.cert_file must be signed by a CA it trusts, or it is not sent)", err, who)
			}
		}
		return nil, nil, &failure{query: q, err: err, server: true}
	}
	var api apiResponse
	isAPI := json.Unmarshal(body, &api) == nil && (api.Status == "success" || api.Status == "error")
	if resp.StatusCode/100 != 2 {
		f := &failure{query: q, server: true}
		if code := resp.StatusCode; code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			f.retryAt = s.retryAfter(resp.Header.Get("Retry-After"))
		}
		switch {
		case isAPI && api.Status == "error" && (resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnprocessableEntity):
			// Prometheus refused this query: the others may go on.
			f.server = false
			f.err = fmt.Errorf("refused by Prometheus (%s): %s", api.ErrorType, api.Error)
		case isAPI && api.Status == "error":
			f.err = fmt.Errorf("%s answered %s (%s): %s", s.addr, resp.Status, api.ErrorType, api.Error)
		default:
			var path string
			if resp.StatusCode == http.StatusNotFound {
				path = " for " + u.Path
			}
			var after string
			if v := resp.Header.Get("Retry-After"); v != "" {
				after = fmt.Sprintf(" (Retry-After %s)", v)
			}
			var carried string
			if code := resp.StatusCode; code == http.StatusUnauthorized || code == http.StatusForbidden {
				carried = " (" + s.creds.carried() + ")"
			}
			f.err = fmt.Errorf("%s answered %s%s%s: %s%s", s.addr, resp.Status, path, after, excerpt(body), carried)
		}
		return nil, nil, f
	}
	if !isAPI || api.Status != "success" {
		return nil, nil, &failure{query: q, server: true, err: fmt.Errorf("%s answered %s with %s, not Prometheus's API JSON: %s",
			s.addr, resp.Status, resp.Header.Get("Content-Type"), excerpt(body))}
	}
	var data struct {
		Type   model.ValueType `json:"resultType"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(api.Data, &data); err != nil {
		return nil, nil, &failure{query: q, server: true, err: fmt.Errorf("%s answered %s, not Prometheus's API JSON: %v", s.addr, resp.Status, err)}
	}
	if data.Type != model.ValMatrix {
		return nil, nil, &failure{query: q, err: fmt.Errorf("got %s, want a range vector", data.Type)}
	}
	var matrix model.Matrix
	if err := json.Unmarshal(data.Result, &matrix); err != nil {
		return nil, nil, &failure{query: q, server: true, err: fmt.Errorf("%s answered %s, not Prometheus's API JSON: %v", s.addr, resp.Status, err)}
	}
	return matrix, api.Warnings, nil
}

// retryAfter reads a Retry-After header (seconds or an HTTP date) as the
// wall time to ask again at, MaxRetryAfter from now at most; zero when
// the header is absent or unreadable.
func (s *Source) retryAfter(v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	now := s.wall()
	var at time.Time
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		at = now.Add(time.Duration(secs) * time.Second)
	} else if t, err := http.ParseTime(v); err == nil {
		at = t
	} else {
		return time.Time{}
	}
	if limit := now.Add(MaxRetryAfter); at.After(limit) {
		at = limit
	}
	return at
}

// redact hides an address's password, for messages.
func redact(addr string) string {
	if u, err := url.Parse(addr); err == nil {
		return u.Redacted()
	}
	return addr
}

// excerpt is the start of an answer's body, on one line, for a message.
func excerpt(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	if s == "" {
		return "(no body)"
	}
	return s
}

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)
}

// seriesLog is what has been logged of one series' query, and when its
// newest sample was (a time, never a value).
type seriesLog struct {
	fails    failing.Streak
	warnings string
	empty    bool      // the query selected no series
	last     time.Time // the newest sample returned
	missed   bool      // the last collection did not ask it or it failed
}

// logOf returns what was logged of series, made on first use. Callers
// hold s.mu.
func (s *Source) logOf(series string) *seriesLog {
	l := s.logged[series]
	if l == nil {
		l = &seriesLog{}
		s.logged[series] = l
	}
	return l
}

// sampled records a series' collection: the newest sample returned (zero:
// none) and whether it missed its range.
func (s *Source) sampled(series string, newest time.Time, missed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.logOf(series)
	if newest.After(l.last) {
		l.last = newest
	}
	l.missed = missed
}

// said logs a query's own failure (nil: its success) as failing.Streak
// does: the first at once with the query and where it was set, the same
// again every failing.RemindEvery, and the success after it once.
func (s *Source) said(series string, q *query, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.logOf(series)
	if err != nil {
		l.fails.Fail(s.log, s.wall(), "query failed; its series gets no samples while it fails", err, "series", series, "origin", q.origin)
		return
	}
	l.fails.OK(s.log, s.wall(), "query answers again", "series", series, "origin", q.origin)
}

// selected logs, at info level, a query that selects no series (a metric
// or label spelt wrong, an exporter not deployed, a locality without
// nodes) once, and once when it selects some again: Prometheus answers
// such a query without an error, and its series, never sampled, is not
// marked stale.
func (s *Source) selected(series string, q *query, text string, some bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.logOf(series)
	switch {
	case !some && !l.empty:
		s.log.Info("Prometheus has no series for the query; its series gets no samples until it has", "series", series, "query", text, "origin", q.origin)
	case some && l.empty:
		s.log.Info("Prometheus has series for the query again", "series", series, "origin", q.origin)
	}
	l.empty = !some
}

// warned logs the warnings Prometheus attached to a series' query when
// they differ from those it last attached.
func (s *Source) warned(series, q string, warnings []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.logOf(series)
	text := strings.Join(warnings, "; ")
	if text != l.warnings && text != "" {
		s.log.Warn("Prometheus warns of a query", "series", series, "query", q, "warning", text)
	}
	l.warnings = text
}

// forgetSeries drops what was logged of series no longer asked.
func forgetSeries[J any](s *Source, jobs []J, name func(J) string) {
	keep := map[string]bool{}
	for _, j := range jobs {
		keep[name(j)] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for series := range s.logged {
		if !keep[series] {
			delete(s.logged, series)
		}
	}
}
