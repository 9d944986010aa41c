// Package prometheus is the metric source that reads a Prometheus server
// with range queries: IOPS from node_exporter-style metrics (Nomad reports
// none), or any other series an operator names as a PromQL template.
//
// It only reads from Prometheus; it must never write to it, and it never
// reuses a value it could not refresh: a failed query makes its series
// stale for that collection.
package prometheus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/hashicorp/go-hclog"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

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
	// HTTPClient, when set, is used for requests (TLS, proxies).
	HTTPClient *http.Client
}

// LocalityQuery is a query one locality's policy names: it reads Metric
// for Locality, in addition to (or, for a metric of Config.Queries, instead
// of) the source-wide queries.
type LocalityQuery struct {
	Locality source.Locality
	Metric   string
	Query    string
}

// Source reads series from Prometheus.
type Source struct {
	api     promv1.API
	queries map[string]*template.Template
	metrics []string

	mu      sync.Mutex
	local   map[string]map[string]*template.Template // locality → metric → query
	labels  Labels
	conc    int
	timeout time.Duration
	log     hclog.Logger
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
	client, err := promapi.NewClient(promapi.Config{Address: cfg.Address, Client: cfg.HTTPClient})
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	queries := cfg.Queries
	if queries == nil {
		queries = DefaultQueries()
	}
	s := &Source{
		api:     promv1.NewAPI(client),
		queries: map[string]*template.Template{},
		labels:  cfg.Labels,
		conc:    cfg.Concurrency,
		timeout: cfg.Timeout,
		log:     log.Named("prometheus"),
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
		s.queries[metric] = tmpl
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
	local := map[string]map[string]*template.Template{}
	for _, q := range qs {
		tmpl, err := querytmpl.Parse(q.Metric, q.Query)
		if err != nil {
			return fmt.Errorf("prometheus: query for %s of %s: %w", q.Metric, q.Locality, err)
		}
		if local[q.Locality.String()] == nil {
			local[q.Locality.String()] = map[string]*template.Template{}
		}
		local[q.Locality.String()][q.Metric] = tmpl
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
// from Since (exclusive) or Now-Lookback to Now at Step.
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
	if !req.Since.IsZero() {
		start = req.Since.Add(step).Truncate(step)
		if !start.After(req.Since) {
			start = start.Add(step)
		}
	}
	end := req.Now.Truncate(step)

	type job struct {
		loc    source.Locality
		metric string
		tmpl   *template.Template
	}
	s.mu.Lock()
	local := s.local
	s.mu.Unlock()
	var jobs []job
	for _, l := range req.Localities {
		own := local[l.String()]
		for _, m := range s.metrics {
			if own[m] == nil {
				jobs = append(jobs, job{l, m, s.queries[m]})
			}
		}
		for _, m := range sortedMetrics(own) {
			jobs = append(jobs, job{l, m, own[m]})
		}
	}
	var (
		mu      sync.Mutex
		res     source.Result
		failed  int
		lastErr error
		wg      sync.WaitGroup
		sem     = make(chan struct{}, s.conc)
	)
	for _, j := range jobs {
		series := source.SeriesName(j.loc.String(), j.metric)
		if start.After(end) {
			continue // nothing new since the last collection
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			samples, err := s.query(ctx, j.tmpl, j.loc, series, start, end, step)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				lastErr = err
				res.Stale = append(res.Stale, source.Stale{Series: series, Reason: err.Error()})
				return
			}
			for _, smp := range samples {
				if !req.Since.IsZero() && !smp.Time.After(req.Since) {
					continue
				}
				res.Samples = append(res.Samples, smp)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return source.Result{}, err
	}
	if failed > 0 && failed == len(jobs) {
		return source.Result{}, fmt.Errorf("prometheus: every query failed: %w", lastErr)
	}
	res.Sort()
	return res, nil
}

func sortedMetrics(m map[string]*template.Template) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *Source) query(ctx context.Context, tmpl *template.Template, loc source.Locality, series string, start, end time.Time, step time.Duration) ([]source.Sample, error) {
	var q bytes.Buffer
	if err := tmpl.Execute(&q, querytmpl.Data(s.Matchers(loc), loc.String())); err != nil {
		return nil, fmt.Errorf("render query: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	val, warnings, _, err := s.api.QueryRange(ctx, q.String(), promv1.Range{Start: start, End: end, Step: step})
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", q.String(), err)
	}
	for _, w := range warnings {
		s.log.Warn("query warning", "series", series, "warning", w)
	}
	matrix, ok := val.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("query %q: got %s, want a range vector", q.String(), val.Type())
	}
	// Several result series (a template without an aggregation) are summed
	// per timestamp, so the locality gets one value per step.
	sums := map[int64]float64{}
	for _, ss := range matrix {
		for _, p := range ss.Values {
			v := float64(p.Value)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			sums[int64(p.Timestamp)] += v
		}
	}
	out := make([]source.Sample, 0, len(sums))
	for ms, v := range sums {
		out = append(out, source.Sample{Series: series, Time: time.UnixMilli(ms).UTC(), Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}
