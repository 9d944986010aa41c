// Package agent is the foreshape daemon: it wires the Raft node and
// replicated state, the metric sources, the collect and forecast loops and
// the HTTP API, and owns their lifecycle (New, Run, Reload, Close).
//
// It only wires: collection, forecasting, state and the API each live in
// their own package and can be read alone. The leader runs the cycle;
// every agent serves the API.
package agent

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/collect"
	"github.com/foreshape/foreshape/agent/predict"
	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/agent/ui"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/failing"
	"github.com/foreshape/foreshape/plugins/source"
	nomadsource "github.com/foreshape/foreshape/plugins/source/nomad"
	promsource "github.com/foreshape/foreshape/plugins/source/prometheus"

	// The built-in scale targets validate policies' target blocks.
	_ "github.com/foreshape/foreshape/plugins/target/builtin"
	"github.com/foreshape/foreshape/policies"
)

// Log keys used across the agent.
const (
	logKeyError    = "error"
	logKeyPolicies = "policies"
	logKeyAddress  = "address"
	logKeyDuration = "duration"
)

// Options are what the agent takes besides its configuration.
type Options struct {
	// Logger is the root logger; nil builds one from the configuration.
	Logger hclog.Logger
	// Policies, when not nil, are used instead of loading policies.dir
	// (a replay's). Reload then keeps them.
	Policies []*policies.Policy
	// FallbackPolicies run while policies.dir holds no policy (dev mode's
	// demo policies): a reload that finds policies there runs those
	// instead, and one that finds none again runs these.
	FallbackPolicies []*policies.Policy
	// Clock gives the data time; nil means the wall clock.
	Clock Clock
	// Version is reported by /v1/status.
	Version string
	// CycleInterval overrides the wall-clock interval between cycles;
	// zero derives it from the shortest policy step and the clock's speed.
	CycleInterval time.Duration
	// MaxSeries bounds the series the leader stores; zero means
	// collect.DefaultMaxSeries.
	MaxSeries int
	// Sources, when not nil, are the metric sources instead of Nomad and
	// Prometheus (a replay of recorded series): the agent then talks to no
	// Nomad, and policies' Prometheus queries read from these sources.
	Sources []source.Source
	// Lookback bounds how much history sources that keep it return on their
	// first cycle; zero lets each source choose.
	Lookback time.Duration

	// older, set by tests only, makes the server's state machine one of an
	// older release (state.NewOlderFSM): it reads o's command types and
	// snapshot sections as unknown.
	older *state.Older
	// forwardWait, set by tests only, replaces the constant forwardWait:
	// how long this server holds an answer for its state to catch up with
	// the leader's (Agent.catchUpWait). A test of a follower that never
	// catches up waits for it whole.
	forwardWait time.Duration
}

// orFallback returns pols, or the fallback policies when pols is empty and
// there are some, saying so.
func (o Options) orFallback(log hclog.Logger, cfg *config.Config, pols []*policies.Policy) []*policies.Policy {
	if len(pols) > 0 || len(o.FallbackPolicies) == 0 {
		return pols
	}
	if preflight.PoliciesDirUnread(cfg) {
		log.Info("running the fallback policies: policies.dir is not set", logKeyPolicies, len(o.FallbackPolicies))
		return o.FallbackPolicies
	}
	log.Info("policies.dir holds no policy: running the fallback policies until a reload finds some there",
		"dir", cfg.Policies.Dir, logKeyPolicies, len(o.FallbackPolicies))
	return o.FallbackPolicies
}

// preflight is what the agent's start checks take from its options.
func (o Options) preflight() preflight.Options {
	return preflight.Options{Policies: o.Policies, Sources: o.Sources != nil, MaxSeries: o.MaxSeries}
}

// Agent is a running foreshape agent.
type Agent struct {
	log   hclog.Logger
	opts  Options
	clock Clock

	cfgMu sync.RWMutex
	cfg   *config.Config
	pols  []*policies.Policy
	// read are the digests of the files the agent read at its start for
	// settings that take effect at a start (preflight.Start.Read), the
	// TLS files' as last read by a reload that rotated them.
	read map[string][sha256.Size]byte
	// tls is the certificate and CAs the HTTP API and the Raft port
	// present and trust, which a reload rotates; nil without TLS.
	tls *cluster.TLS
	// reloaded tells the leader loop that a reload applied, so that it
	// waits for its next cycle by the new policies' interval.
	reloaded chan struct{}

	fsm  *state.FSM
	node *cluster.Node
	// inMemory is set when the Raft transport is in-process (dev mode):
	// its address is a random ID nobody can dial.
	inMemory bool

	nomad   *nomadsource.Source
	prom    *promsource.Source // nil without prometheus.address
	sources []source.Source
	// nomadClient is the agent's one Nomad client, shared by the source
	// and the act half; nil when Options.Sources replace Nomad.
	nomadClient *nomadapi.Client
	act         *actor

	api      *api.Server
	dash     *ui.Handler
	registry *prometheus.Registry
	tokens   atomic.Pointer[[]string]
	// readTokens are acl.read_token_file's, which may only read.
	readTokens atomic.Pointer[[]string]

	latest atomic.Pointer[cycleResult]
	tel    telemetry

	// The HTTP API and the Consul registration (serve.go).
	frontDoor

	// Cluster wiring (clustering.go, reports.go, forward.go).
	name        string
	peers       *peerClient
	reports     *reportStore
	allocStats  bool
	leaderCache leaderCache
	// memberFails are the membership updates' failures (reconcileMembers,
	// called by the cluster's reconcile loop alone), logged as a streak
	// rather than a line each round, once a second.
	memberFails failing.Streak
	// applyMember commits a membership update; nil is through the Raft
	// node (tests put a failing one in its place before Run).
	applyMember func(context.Context, state.Command) (state.Result, error)

	closeOnce sync.Once
}

// cycleResult is what the last cycle produced, served by the API.
type cycleResult struct {
	cycle   api.Cycle
	predict predict.Result
}

// New builds an agent from cfg, refusing what preflight.Check refuses (the
// configuration's rules, its policies and the files it names; `foreshape
// config validate` runs the same checks). It opens the Raft stores and
// binds the HTTP listener, so errors in either show here; Run starts the
// work.
func New(cfg *config.Config, opts Options) (*Agent, error) {
	log := opts.Logger
	if log == nil {
		log = hclog.New(&hclog.LoggerOptions{
			Name: "foreshape", Level: hclog.LevelFromString(cfg.LogLevel), JSONFormat: cfg.LogJSON,
		})
	}
	a := &Agent{log: log, opts: opts, cfg: cfg, clock: opts.Clock, registry: prometheus.NewRegistry(), reloaded: make(chan struct{}, 1)}
	if a.clock == nil {
		a.clock = WallClock{}
	}
	if !cfg.Server.Enabled {
		return nil, errors.New("agent: server.enabled = false: this is a client agent; start it with NewClient")
	}
	start, diags := preflight.Check(cfg, opts.preflight())
	if err := preflight.Err(diags); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.pols = opts.orFallback(log, cfg, start.Policies)
	a.tokens.Store(&start.Tokens)
	a.readTokens.Store(&start.ReadTokens)
	a.read, a.tls = start.Read, start.TLS

	newFSM := state.NewFSM
	if o := opts.older; o != nil {
		newFSM = func(c state.Config) (*state.FSM, error) { return state.NewOlderFSM(c, *o) }
	}
	fsm, err := newFSM(state.Config{Profiles: state.DefaultProfiles()})
	if err != nil {
		return nil, fmt.Errorf("agent: state: %w", err)
	}
	a.fsm = fsm
	a.name = start.Name
	// Allocation stats cost a request per allocation and cycle (none for
	// nodes whose client agent reports them): read in dev mode, and when a
	// policy loaded at the start spreads by use (migrate.spread_by_use:
	// the planner reads each task group's own use, GroupForecasts).
	a.allocStats = cfg.DevMode || slices.ContainsFunc(a.pols, func(p *policies.Policy) bool { return p.Migrate.SpreadByUse })
	// A report stands for its node until two and a half cycles passed
	// without a newer one.
	a.reports = newReportStore(func() time.Duration { return max(5*a.interval()/2, time.Second) })
	node, err := a.startNode(cfg, start)
	if err != nil {
		return nil, err
	}
	a.node = node

	if opts.Sources != nil {
		a.sources = opts.Sources
	} else if err := a.buildSources(cfg, start.Nomad, start.Prometheus); err != nil {
		a.node.Close()
		return nil, err
	}
	if a.act, err = a.newActor(cfg, a.nomadClient, a.name); err != nil {
		a.node.Close()
		return nil, err
	}
	a.tel = newTelemetry(a.registry)
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&serverCollector{node: a.node, series: a.fsm.Infos, now: time.Now, notActing: func() string {
			why, _ := a.act.NotActing()
			return why
		}})

	dash, err := a.newDashboard()
	if err != nil {
		a.node.Close()
		return nil, err
	}
	srv, err := api.NewServer(a, api.Options{Registry: a.registry, Logger: log, TokensFunc: a.currentTokens, ReadTokensFunc: a.currentReadTokens,
		NoMetrics: !cfg.Telemetry.PrometheusMetrics, UI: dash, Operator: a, Act: a.act, Ready: a.node.Ready})
	if err != nil {
		a.node.Close()
		return nil, err
	}
	a.api, a.dash = srv, dash
	if err := a.listen(cfg, start.TLS); err != nil {
		a.node.Close()
		return nil, err
	}
	if cfg.Consul.Enabled {
		reg := registration{Name: a.name, HTTPAddr: httpAdvertise(cfg, a.listener.Addr()), TLS: cfg.TLS.Enabled(),
			RaftAddr: a.node.Info().RaftAddress, Version: opts.Version, Role: a.role}
		if cfg.DevMode {
			reg.RaftAddr = "" // an in-process transport: nobody can join it
		}
		if a.consul, err = newConsulRegistration(start.Consul, cfg.Consul, reg, log); err != nil {
			a.Close()
			return nil, err
		}
	}
	return a, nil
}

// HTTPAddr is the address the API listens on.
func (a *Agent) HTTPAddr() string { return a.listener.Addr().String() }

// buildSources builds the Nomad source over the agent's one Nomad client
// and, with prometheus.address, the Prometheus source, which reaches it
// as the start checks built (prom: its TLS, credentials and headers).
func (a *Agent) buildSources(cfg *config.Config, client *nomadapi.Client, prom *promsource.Config) error {
	a.nomadClient = client
	ns, err := nomadsource.New(nomadsource.Config{Client: client, NodeSeries: true, AllocStats: a.allocStats, Reports: a.reports}, a.log)
	if err != nil {
		return err
	}
	a.nomad = ns
	a.sources = []source.Source{ns}
	if prom != nil {
		pc := *prom
		pc.Queries = promsource.DefaultQueries()
		if cfg.Prometheus.IOPSQuery != "" {
			pc.Queries[source.IOPS] = cfg.Prometheus.IOPSQuery
			pc.Origins = map[string]string{source.IOPS: iopsQueryOrigin(cfg)}
		}
		ps, err := promsource.New(pc, a.log)
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		a.prom = ps
		a.sources = append(a.sources, ps)
	}
	return a.setPolicyQueries(a.pols)
}

// iopsQueryOrigin says where prometheus.iops_query was set, for the log
// line of a query Prometheus refuses.
func iopsQueryOrigin(cfg *config.Config) string {
	if src := cfg.Source("prometheus.iops_query"); src != "default" {
		return fmt.Sprintf("prometheus.iops_query (%s)", src)
	}
	return "prometheus.iops_query"
}

// setPolicyQueries hands the policies' Prometheus queries (forecast.queries)
// to the Prometheus source, or fails when they need one and the agent runs
// none.
func (a *Agent) setPolicyQueries(pols []*policies.Policy) error {
	if a.opts.Sources != nil {
		return nil // the given sources serve every metric they have
	}
	qs := policyQueries(pols)
	if a.prom == nil {
		// The start checks (preflight) refuse queries without
		// prometheus.address, so this is a reload that sets it: the
		// Prometheus source starts with the agent.
		if len(qs) > 0 {
			return fmt.Errorf("agent: policy %q names Prometheus queries (forecast.queries), but this agent started without prometheus.address, which takes effect after a restart", policyWithQueries(pols))
		}
		return nil
	}
	return a.prom.SetLocalityQueries(qs)
}

// policyQueries are the policies' forecast.queries, one per locality and
// metric: of two policies of one locality (preflight warns of them) the
// first read wins, as it does for the planner.
func policyQueries(pols []*policies.Policy) []promsource.LocalityQuery {
	var qs []promsource.LocalityQuery
	seen := map[string]bool{}
	for _, p := range pols {
		for _, metric := range slices.Sorted(maps.Keys(p.Forecast.Queries)) {
			if key := p.Locality.String() + "\x00" + metric; !seen[key] {
				seen[key] = true
				qs = append(qs, promsource.LocalityQuery{Locality: p.Locality, Metric: metric, Query: p.Forecast.Queries[metric],
					Origin: fmt.Sprintf("policy %q forecast.queries.%s (%s)", p.Name, metric, p.Forecast.QueriesRange)})
			}
		}
	}
	return qs
}

func policyWithQueries(pols []*policies.Policy) string {
	for _, p := range pols {
		if len(p.Forecast.Queries) > 0 {
			return p.Name
		}
	}
	return ""
}

// httpReadTimeout bounds reading a request whole, body included: a client
// that sends headers and then a body that never arrives held its
// connection (and, through a follower, a forward) for good. Answers are
// not bounded: a blocking query waits up to its wait.
var httpReadTimeout = 30 * time.Second

// newHTTPServer is the agent's HTTP server for h (a server's or a client
// agent's). A browser's cross-origin request that changes something is
// refused (403): without ACLs, a page an operator visited could otherwise
// pause the queue or submit a move through the operator's browser, as a
// form's POST needs no CORS preflight. The CLI, curl and same-origin pages
// (the dashboard) are not affected.
func newHTTPServer(h http.Handler) *http.Server {
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusForbidden, "cross-origin request refused: a browser page of another origin may not change anything through this API")
	}))
	return &http.Server{Handler: csrf.Handler(h), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: httpReadTimeout}
}

func (a *Agent) listen(cfg *config.Config, t *cluster.TLS) error {
	l, err := net.Listen("tcp", cfg.HTTP.Address)
	if err != nil {
		return fmt.Errorf("agent: http listener on %s: %w", cfg.HTTP.Address, err)
	}
	if t != nil {
		l = tls.NewListener(l, serverTLS(t, cfg.TLS.VerifyIncoming))
	}
	a.listener = l
	a.node.SetHTTPAddr(httpAdvertise(cfg, l.Addr()))
	var h http.Handler = a.forwardWrites(a.api)
	if cfg.TLS.VerifyIncoming {
		h = requireClientCert(h)
	}
	a.httpSrv = newHTTPServer(h)
	a.httpSrv.RegisterOnShutdown(a.dash.Close)
	// A blocking query would hold Shutdown for its 5 s, and a leader its
	// hand-over with it.
	a.httpSrv.RegisterOnShutdown(a.api.EndBlockingQueries)
	return nil
}

// serverTLS is the HTTP API's TLS: the agent's certificate and, with a CA,
// the client certificates it accepts.
// Both are read at each handshake, so a reload's rotation applies to new
// connections.
func serverTLS(t *cluster.TLS, verifyIncoming bool) *tls.Config {
	auth := tls.NoClientCert
	if verifyIncoming {
		// The handshake verifies a certificate when one is given;
		// requireClientCert refuses requests without one, except
		// /v1/health and /v1/ready, so that Consul's and Nomad's health
		// checks need none.
		auth = tls.VerifyClientCertIfGiven
	}
	return t.ListenerConfig(auth)
}

// Run runs the agent until ctx is done: the API, the node watch and, while
// this agent leads, the collect and forecast cycle.
func (a *Agent) Run(ctx context.Context) error {
	watch := func(ctx context.Context) error {
		if a.nomad != nil {
			a.nomad.Watch(ctx)
		}
		return nil
	}
	lead := func(ctx context.Context) error {
		return a.node.RunLeaderLoop(ctx, func(term context.Context) {
			a.leaderLoop(term)
			if ctx.Err() != nil {
				a.log.Info("leadership ended: the agent is shutting down")
			} else {
				a.termLog().Info("leadership ended: cycle stopped; forecasts and hotspots withdrawn until this agent leads again")
			}
		})
	}
	return a.serve(ctx, a.log, time.Second, watch, lead)
}

// term is what the leader loop keeps for one leadership term: the
// collector and the predictor start afresh each term, from the replicated
// store, so nothing a previous term remembered outlives it.
type term struct {
	collector *collect.Collector
	step      time.Duration // the collector's step
	predictor *predict.Predictor
	// unmatched holds the policy localities (policy/locality) already
	// logged as having no ready Nomad node.
	unmatched map[string]bool
	// hotspots are the last cycle's, by policy, locality and metric.
	hotspots map[string]predict.Hotspot
	// clockFails and collectFails are the data clock's and the
	// collection's failures, logged as a streak rather than a line a
	// cycle.
	clockFails, collectFails failing.Streak
	// act is the act half's.
	act actTerm
}

// leaderLoop runs cycles while this agent leads. When leadership ends it
// withdraws what it published: a follower serves no forecasts, hotspots or
// gauges, which would otherwise age without anyone noticing.
func (a *Agent) leaderLoop(ctx context.Context) {
	a.termLog().Info("leading: starting the collect and forecast cycle")
	t := &term{predictor: predict.New(a.log)}
	a.act.start(ctx, &t.act)
	defer func() {
		a.act.stop(&t.act)
		a.latest.Store(nil)
		a.tel.reset()
	}()
	for {
		start := time.Now()
		a.cycle(ctx, t)
		if !a.waitNextCycle(ctx, start) {
			return
		}
	}
}

// waitNextCycle waits until an interval has passed since the cycle that
// started at start, or ctx ends (false). A reload meanwhile measures the
// interval again: policies that forecast every minute instead of every
// hour are run a minute after the last cycle, not an hour.
func (a *Agent) waitNextCycle(ctx context.Context, start time.Time) bool {
	timer := time.NewTimer(max(a.interval()-time.Since(start), 0))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-a.reloaded:
			timer.Reset(max(a.interval()-time.Since(start), 0))
		case <-timer.C:
			return true
		}
	}
}

// interval is the wall time between cycles: the shortest policy step in
// data time, divided by the clock's speed.
func (a *Agent) interval() time.Duration {
	if a.opts.CycleInterval > 0 {
		return a.opts.CycleInterval
	}
	a.cfgMu.RLock()
	step := minStep(a.pols)
	a.cfgMu.RUnlock()
	d := time.Duration(float64(step) / a.clock.Speed())
	return max(d, 100*time.Millisecond)
}

// collector returns the term's collector, built anew when the policies'
// shortest step changed.
func (a *Agent) collector(t *term, step time.Duration) (*collect.Collector, error) {
	if t.collector != nil && t.step == step {
		return t.collector, nil
	}
	c, err := collect.New(collect.Config{Sources: a.sources, Apply: applier{a.node}, Store: a.fsm, Step: step,
		Lookback: a.opts.Lookback, MaxSeries: a.opts.MaxSeries, Logger: a.log})
	if err != nil {
		return nil, err
	}
	t.collector, t.step = c, step
	return c, nil
}

// cycle collects, forecasts and publishes the result.
func (a *Agent) cycle(ctx context.Context, t *term) {
	started := time.Now()
	a.cfgMu.RLock()
	pols := a.pols
	a.cfgMu.RUnlock()
	c := api.Cycle{Started: started}
	coll, err := a.collector(t, minStep(pols))
	if err != nil {
		c.Error = err.Error()
		a.log.Error("cycle skipped", logKeyError, err)
		a.publish(c, predict.Result{})
		a.tel.skippedCycle()
		return
	}
	now, err := a.clock.Now(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		c.Error = err.Error()
		t.clockFails.Fail(a.log, time.Now(), "cycle skipped: no data time; tried again each cycle", err)
		a.publish(c, predict.Result{})
		a.tel.skippedCycle()
		return
	}
	t.clockFails.OK(a.log, time.Now(), "data time again; cycles resume")
	c.DataTime = now
	st, err := coll.RunOnce(ctx, now, policies.Localities(pols))
	c.Collected = st.Samples
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		c.Error = err.Error()
		t.collectFails.Fail(a.termLog(), time.Now(), "collection failed; forecasting from what the store has", err)
	} else {
		t.collectFails.OK(a.log, time.Now(), "collection works again")
		if p := st.Problems(); p != "" {
			c.Error = p
		}
	}
	res := t.predictor.RunOnce(now, a.fsm, pols, a.nodes()...)
	a.explainNoData(t, pols, res.Pending)
	// The act half runs beside the cycle (actor.start), on the newest
	// forecasts it has not acted on.
	t.act.offer(actInput{now: now, pols: pols, res: res})
	c.Forecasts, c.Hotspots = len(res.Forecasts), len(res.Hotspots)
	c.Duration = time.Since(started)
	a.publish(c, res)
	a.tel.observe(c, cycleOutcome(st, err), st, res, a.sourceNames(), started.Add(c.Duration))
	a.log.Debug("cycle done", "data_time", now, logKeyDuration, c.Duration, "samples", st.Samples, "result", res.Describe())
	a.logHotspots(t, res.Hotspots)
}

// nodes are the cluster's nodes as the Nomad source last listed them, the
// base it measures its localities' CPU and memory over; none without a
// Nomad source or before its first list.
func (a *Agent) nodes() []predict.Node {
	if a.nomad == nil {
		return nil
	}
	list, known := a.nomad.Capacities()
	if !known {
		return nil
	}
	out := make([]predict.Node, 0, len(list))
	for _, n := range list {
		out = append(out, predict.Node{Name: n.Name, Datacenter: n.Datacenter, NodePool: n.NodePool, NodeClass: n.NodeClass,
			Ready: n.Ready, CPUMHz: n.CPUMHz, MemoryMB: n.MemoryMB})
	}
	return out
}

// explainNoData says why a policy's series has no sample yet where the
// agent can tell: no ready Nomad node is in its locality (a datacenter,
// node pool or class spelt wrong in the policy, or gone from the
// cluster), or it is an IOPS series and no Prometheus source runs (Nomad
// reports no IOPS). Once a term, each policy locality without a ready node
// is logged as a warning naming the datacenters the ready nodes are in.
func (a *Agent) explainNoData(t *term, pols []*policies.Policy, pending []predict.Pending) {
	if a.nomad == nil {
		return
	}
	unmatched, dcs, known := a.nomad.Unmatched(policies.Localities(pols))
	if !known {
		return
	}
	where := "no Nomad node is ready"
	if len(dcs) > 0 {
		where = "the ready nodes are in " + strings.Join(dcs, ", ")
	}
	for i := range pending {
		p := &pending[i]
		if p.State != predict.NoData {
			continue
		}
		switch {
		case slices.Contains(unmatched, p.Locality):
			p.Reason = fmt.Sprintf("no samples yet: no ready Nomad node is in %s (%s)", p.Locality, where)
		case p.Metric == source.IOPS && a.prom == nil:
			p.Reason = "no samples yet: Nomad reports no IOPS; they come from Prometheus, and prometheus.address is not set"
		}
	}
	if t.unmatched == nil {
		t.unmatched = map[string]bool{}
	}
	now := map[string]bool{}
	for _, p := range pols {
		if !slices.Contains(unmatched, p.Locality) {
			continue
		}
		key := p.Name + "/" + p.Locality.String()
		now[key] = true
		if !t.unmatched[key] {
			a.log.Warn("no ready Nomad node is in a policy's locality; its series get no samples", "policy", p.Name,
				"locality", p.Locality.String(), "datacenters", strings.Join(dcs, ","))
		}
	}
	t.unmatched = now
}

// logHotspots logs a hotspot at info level in the cycle that first
// predicts it and when no cycle predicts it any more; the cycles in
// between, which predict it again (its time and peak moving a little),
// log it at debug level, so that one hotspot is not a line a cycle.
func (a *Agent) logHotspots(t *term, hs []predict.Hotspot) {
	next := make(map[string]predict.Hotspot, len(hs))
	for _, h := range hs {
		key := h.Policy + "|" + h.Locality.String() + "|" + h.Metric
		next[key] = h
		level := hclog.Debug
		if _, seen := t.hotspots[key]; !seen {
			level = hclog.Info
		}
		args := []any{"policy", h.Policy, "locality", h.Locality, "metric", h.Metric,
			"at", h.At, "probability", fmt.Sprintf("%.2f", h.Probability), "line", h.Line, "peak", fmt.Sprintf("%.1f", h.Peak)}
		if h.Detail != "" {
			args = append(args, "detail", h.Detail) // read on the nodes that stay while some are drained
		}
		a.log.Log(level, "hotspot predicted", args...)
	}
	for key, h := range t.hotspots {
		if _, still := next[key]; !still {
			a.log.Info("hotspot no longer predicted", "policy", h.Policy, "locality", h.Locality, "metric", h.Metric)
		}
	}
	t.hotspots = next
}

// sourceNames are the names of the agent's metric sources.
func (a *Agent) sourceNames() []string {
	names := make([]string, len(a.sources))
	for i, s := range a.sources {
		names[i] = s.Name()
	}
	return names
}

func (a *Agent) publish(c api.Cycle, res predict.Result) {
	a.latest.Store(&cycleResult{cycle: c, predict: res})
}

func (a *Agent) currentTokens() []string { return *a.tokens.Load() }

func (a *Agent) currentReadTokens() []string {
	if p := a.readTokens.Load(); p != nil {
		return *p
	}
	return nil
}

// Close stops Raft (a leader hands over first) and releases the listener,
// then waits for the Consul deregistration Run started, at most 5 s after
// Run's stop began. It is safe to call twice.
func (a *Agent) Close() error {
	var err error
	a.closeOnce.Do(func() {
		a.listener.Close()
		a.leaderCache.close()
		err = a.node.Close()
		a.leaving.Wait()
		// A call its cycle gave up on in its dial leaves the connection
		// in the client's pool unused, and the Nomad end waits for its
		// first request: an embedded one (agent -dev) stopping next
		// waited 2 s for it.
		if a.nomadClient != nil {
			a.nomadClient.Close()
		}
	})
	return err
}

// StopWait bounds a server's stop from its signal to its exit: Run's HTTP
// shutdown, then Close. A job's kill_timeout below it lets Nomad kill a
// server in the middle of a clean stop (Nomad's default is 5 s).
const StopWait = httpShutdownWait + cluster.CloseWait

// ClientStopWait bounds a client agent's stop: its HTTP shutdown, the
// Consul deregistration beside it.
const ClientStopWait = httpShutdownWait

// minStep is the shortest forecast step of the policies (1m with none).
func minStep(pols []*policies.Policy) time.Duration {
	step := time.Duration(0)
	for _, p := range pols {
		if step == 0 || p.Forecast.Step < step {
			step = p.Forecast.Step
		}
	}
	if step <= 0 {
		step = time.Minute
	}
	return step
}

// applier commits state commands through the Raft node.
type applier struct{ node *cluster.Node }

func (ap applier) Apply(ctx context.Context, cmd state.Command) (state.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	data, err := state.Marshal(cmd)
	if err != nil {
		return state.Result{}, err
	}
	resp, err := ap.node.Apply(ctx, data)
	if errors.Is(err, cluster.ErrDataDir) {
		// Not committed; worth trying again once the disk has room, or
		// on another leader: 503.
		return state.Result{}, fmt.Errorf("%w: %w", err, api.ErrUnavailable)
	}
	if err != nil {
		return state.Result{}, err
	}
	r, _ := resp.(state.Result)
	return r, nil
}
