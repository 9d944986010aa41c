// Package api is the agent's HTTP API, versioned under /v1, and the Go
// client the CLI uses to call it.
//
// The server only translates: it reads what the agent knows through the
// Backend interface and encodes it as JSON (or Prometheus text for
// /v1/metrics). It must never hold domain logic, change replicated state
// directly, or block on the cluster beyond a request's context.
package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/foreshape/foreshape/policies"
)

// Backend is what the server needs from the agent.
type Backend interface {
	Status(ctx context.Context) Status
	Policies(ctx context.Context) []Policy
	Series(ctx context.Context) []Series
	// Forecasts returns the latest forecast of every policy's localities and metrics.
	Forecasts(ctx context.Context) []Forecast
	Hotspots(ctx context.Context) []Hotspot
	Anomalies(ctx context.Context) []Anomaly
}

// ErrNotFound is what handlers answer 404 for.
var ErrNotFound = errors.New("not found")

// Options configure the server.
type Options struct {
	// Tokens, when not empty, are the accepted API tokens: every request
	// except /v1/health and /v1/ready must carry one in X-Foreshape-Token or
	// "Authorization: Bearer".
	Tokens []string
	// TokensFunc, when set, is called on every request for the accepted
	// tokens (so they can change on reload) and takes precedence over
	// Tokens. An empty answer means no token is required.
	TokensFunc func() []string
	// ReadTokens, and ReadTokensFunc likewise, are tokens that may only
	// read (ReadOnly); they count only while Tokens are required.
	ReadTokens     []string
	ReadTokensFunc func() []string
	// Registry holds the agent's own telemetry; the server adds the forecast
	// gauges to it. Nil means a new registry.
	Registry *prometheus.Registry
	// ForecastHorizons are the horizons exported as foreshape_forecast
	// gauges; nil means 5m, 15m, 30m and 1h.
	ForecastHorizons []time.Duration
	// NoMetrics turns /v1/metrics off (telemetry.prometheus_metrics = false).
	NoMetrics bool
	// Act serves the migration queue, reservations and decisions; nil
	// answers 503 on those endpoints.
	Act ActBackend
	// Operator serves the Raft operator endpoints; nil answers 503.
	Operator OperatorBackend
	// Ready, when set, says whether the agent is ready for GET /v1/ready
	// (nil: ready) or why not; like /v1/health it needs no token.
	Ready func(ctx context.Context) error
	// UI, when set, is the dashboard, served under /ui/ (and / redirects
	// there); it applies the token rules itself.
	UI     http.Handler
	Logger hclog.Logger
}

// Server serves the API.
type Server struct {
	backend Backend
	opts    Options
	mux     *http.ServeMux
	log     hclog.Logger
	// stopping ends blocking queries (EndBlockingQueries).
	stopping context.Context
	stop     context.CancelFunc
	// unroutedPatterns are the patterns notAllowed routed to unrouted.
	unroutedPatterns map[string]bool
	// params are the query parameters each endpoint routed by route
	// takes, by its pattern.
	params map[string][]string
}

// EndBlockingQueries answers every blocking query (GET /v1/queue?index=N)
// now, and every later one at once, as if its wait had passed: with the
// queue as it is. For an agent that is stopping (http.Server's
// RegisterOnShutdown), whose Shutdown would otherwise wait for them.
func (s *Server) EndBlockingQueries() { s.stop() }

// NewServer returns the API server for b.
func NewServer(b Backend, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.ForecastHorizons == nil {
		opts.ForecastHorizons = []time.Duration{5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour}
	}
	s := &Server{backend: b, opts: opts, mux: http.NewServeMux(), log: opts.Logger.Named("http")}
	s.stopping, s.stop = context.WithCancel(context.Background())
	if err := opts.Registry.Register(&forecastCollector{backend: b, horizons: opts.ForecastHorizons}); err != nil {
		return nil, fmt.Errorf("api: register forecast gauges: %w", err)
	}
	s.mux.HandleFunc("GET /v1/health", s.health)
	s.mux.HandleFunc("GET /v1/ready", s.ready)
	s.route("GET /v1/status", s.status)
	s.route("GET /v1/policies", s.policies)
	s.route("GET /v1/series", s.series, "prefix")
	s.route("GET /v1/forecasts", s.forecasts, "metric", "history")
	s.route(forecastPattern, s.forecast, "metric", "history")
	s.route("GET /v1/hotspots", s.hotspots)
	s.route("GET /v1/anomalies", s.anomalies)
	s.routeAct()
	s.routeOperator()
	if !opts.NoMetrics {
		s.mux.Handle("GET /v1/metrics", s.auth(s.jsonErrors(promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{}))))
	}
	if opts.UI != nil {
		s.mux.Handle("/ui/", opts.UI)
		s.mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
		s.mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	}
	s.mux.HandleFunc("/", s.unrouted)
	return s, nil
}

// route serves pattern with h behind auth, which refuses a query
// parameter other than params (none: the endpoint takes none).
func (s *Server) route(pattern string, h http.HandlerFunc, params ...string) {
	if s.params == nil {
		s.params = map[string][]string{}
	}
	s.params[pattern] = params
	s.mux.HandleFunc(pattern, s.auth(h))
}

// unknownParam is the first query parameter (by name) r gives that its
// endpoint does not take, with the error that names it and those the
// endpoint takes; "" when there is none, or r's endpoint was not routed by
// route (/v1/metrics, whose scrapers the API does not choose). Such a
// parameter was ignored: ?metric=cpu on /v1/hotspots answered every
// metric's hotspots, ?status=running on /v1/queue the whole queue.
func (s *Server) unknownParam(r *http.Request) (string, string) {
	takes, ok := s.params[r.Pattern]
	if !ok {
		return "", ""
	}
	q := r.URL.Query()
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if slices.Contains(takes, name) {
			continue
		}
		if len(takes) == 0 {
			return name, fmt.Sprintf("%s: %s %s takes no query parameter", name, r.Method, r.URL.Path)
		}
		return name, fmt.Sprintf("%s: %s %s takes only %s", name, r.Method, r.URL.Path, strings.Join(takes, ", "))
	}
	return "", ""
}

// unrouted answers a request no endpoint takes: 405 naming the methods
// its path answers, or 404.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request) {
	if allow := s.allowed(r); len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: %s answers %s only", r.Method, r.URL.Path, r.URL.Path, strings.Join(allow, ", ")))
		return
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
}

// notAllowed routes method at path to unrouted, for a path another
// endpoint's wildcard would otherwise take with that method (GET
// /v1/queue/pause is not the request "pause").
func (s *Server) notAllowed(method, path string) {
	pattern := method + " " + path
	s.mux.HandleFunc(pattern, s.unrouted)
	if s.unroutedPatterns == nil {
		s.unroutedPatterns = map[string]bool{}
	}
	s.unroutedPatterns[pattern] = true
}

// allowed returns the methods the API answers at r's path, other than
// r's own: none when the path is not an endpoint. HEAD comes with GET,
// which answers it (as a client agent's /v1/metrics says).
func (s *Server) allowed(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" && !s.unroutedPatterns[pattern] {
			out = append(out, m)
			if m == http.MethodGet {
				out = append(out, http.MethodHead)
			}
		}
	}
	return out
}

// ServeHTTP implements http.Handler. A forecast's LOCALITY with an empty
// part before another ("dc1//web", "/dc1"), or a "." or ".." part
// ("dc2/../dc1/web"), goes to the endpoint, which refuses it (400); the mux
// would redirect it to the path cleaned of them, and a client following the
// redirect got another locality's forecasts.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if loc, ok := strings.CutPrefix(r.URL.Path, "/v1/forecast/"); ok && (strings.Contains("/"+loc, "//") || dotPart(loc)) &&
		(r.Method == http.MethodGet || r.Method == http.MethodHead) {
		r = r.Clone(r.Context())
		r.Pattern = forecastPattern
		r.SetPathValue("locality", loc)
		s.auth(s.forecast)(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Why a request with ACLs on is refused (403 "permission denied: …"); the
// token itself is never logged nor echoed.
const (
	DeniedNoToken      = "no token: this agent has ACLs on; send one of its acl.token_file tokens in X-Foreshape-Token (or Authorization: Bearer)"
	DeniedUnknownToken = "the token sent is not one of this agent's acl.token_file tokens"
	DeniedReadOnly     = "the token sent may only read (it is one of acl.read_token_file's), and this request changes something or takes a backup: send one of acl.token_file's"
)

// ReadOnly reports whether r is one a token of acl.read_token_file may
// make: a GET or HEAD, but not a backup (GET /v1/operator/snapshot holds
// the whole replicated state).
func ReadOnly(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.Path != "/v1/operator/snapshot"
}

// Denied is why r, which sends tok, is refused by an agent whose
// acl.token_file holds write and acl.read_token_file read (DeniedNoToken,
// DeniedUnknownToken, DeniedReadOnly); "" when it passes, as every request
// does with ACLs off (no write tokens). Tokens compare in constant time.
func Denied(r *http.Request, tok string, write, read []string) string {
	switch {
	case len(write) == 0:
		return ""
	case tok == "":
		return DeniedNoToken
	case ValidToken(tok, write):
		return ""
	case !ValidToken(tok, read):
		return DeniedUnknownToken
	case !ReadOnly(r):
		return DeniedReadOnly
	}
	return ""
}

// DeniedNoClientCert is why a request without a verified client
// certificate is refused (403) by an agent with tls.verify_incoming.
const DeniedNoClientCert = "tls.verify_incoming: a client certificate signed by the agent's CA is required"

// caller is who sent r, for the log: its connection's address, and, on a
// request another server forwarded here, whom that server had it from
// (X-Forwarded-For) — else every write through a follower was logged as
// the follower's.
func caller(r *http.Request) string {
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		return xff + " via " + r.RemoteAddr
	}
	return r.RemoteAddr
}

// repeatedParam is the first query parameter (by name) r gives more than
// once, "" for none: every filter takes one value but the queue's state,
// and a repeated one was read as its first value alone. As unknownParam,
// it leaves an endpoint not routed by route (/v1/metrics) to its callers:
// a scrape's params may repeat one.
func (s *Server) repeatedParam(r *http.Request) string {
	if _, ok := s.params[r.Pattern]; !ok {
		return ""
	}
	q := r.URL.Query()
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if len(q[name]) > 1 && !(r.Pattern == "GET /v1/queue" && name == "state") {
			return name
		}
	}
	return ""
}

// BearerToken is the token of h's "Authorization: Bearer TOKEN" header,
// "" without one. The scheme is case-insensitive (RFC 9110; "bearer"
// was refused as an unknown token) and the token ends at a space, as Nomad
// reads it.
func BearerToken(h http.Header) string {
	scheme, value, ok := strings.Cut(strings.TrimSpace(h.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	tok, _, _ := strings.Cut(strings.TrimSpace(value), " ")
	return tok
}

// auth rejects requests without a valid token when tokens are configured,
// those that give a query parameter their endpoint does not take
// (unknownParam), and those that give one more than once (repeatedParam).
func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tokens, read := s.opts.Tokens, s.opts.ReadTokens
		if s.opts.TokensFunc != nil {
			tokens = s.opts.TokensFunc()
		}
		if s.opts.ReadTokensFunc != nil {
			read = s.opts.ReadTokensFunc()
		}
		if len(tokens) > 0 {
			tok := r.Header.Get("X-Foreshape-Token")
			if tok == "" {
				tok = BearerToken(r.Header)
			}
			if why := Denied(r, tok, tokens, read); why != "" {
				s.log.Warn("request denied", "reason", why, "method", r.Method, "path", r.URL.Path, "remote_addr", caller(r))
				writeError(w, http.StatusForbidden, "permission denied: "+why)
				return
			}
		}
		if name, msg := s.unknownParam(r); name != "" {
			writeError(w, http.StatusBadRequest, msg)
			return
		}
		if name := s.repeatedParam(r); name != "" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s: given %d times; it takes one value", name, len(r.URL.Query()[name])))
			return
		}
		next(w, r)
	}
}

// ValidToken reports whether tok is one of tokens, in constant time; an
// empty tok is never valid. The dashboard applies the same rule.
func ValidToken(tok string, tokens []string) bool {
	if tok == "" {
		return false
	}
	ok := 0
	for _, t := range tokens {
		ok |= subtle.ConstantTimeCompare([]byte(tok), []byte(t))
	}
	return ok == 1
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, Health{Status: "ok", Node: s.backend.Status(r.Context()).Node})
}

// ready answers 200 while the agent is ready (Options.Ready) and 503 with
// the reason otherwise, for health checks that must wait for a server to
// rejoin its cluster, unlike /v1/health, which answers while the process
// serves.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	h := Health{Status: "ok", Node: s.backend.Status(r.Context()).Node}
	if s.opts.Ready != nil {
		if err := s.opts.Ready(r.Context()); err != nil {
			h.Status, h.Error = "not ready", err.Error()
			s.writeJSONStatus(w, r, http.StatusServiceUnavailable, h)
			return
		}
	}
	s.writeJSON(w, r, h)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, s.backend.Status(r.Context()))
}

func (s *Server) policies(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, nonNil(s.backend.Policies(r.Context())))
}

func (s *Server) series(w http.ResponseWriter, r *http.Request) {
	all := s.backend.Series(r.Context())
	if prefix := r.URL.Query().Get("prefix"); prefix != "" {
		kept := all[:0:0]
		for _, se := range all {
			if strings.HasPrefix(se.Series, prefix) {
				kept = append(kept, se)
			}
		}
		all = kept
	}
	s.writeJSON(w, r, nonNil(all))
}

// history is the ?history= of r, else def; ok is false (and the 400
// written) for a value that is not a boolean.
func history(w http.ResponseWriter, r *http.Request, def bool) (withHistory, ok bool) {
	v := r.URL.Query().Get("history")
	if v == "" {
		return def, true
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("history: %q %s", v, notBool))
		return false, false
	}
	return b, true
}

// notBool says what a boolean query parameter takes: what
// strconv.ParseBool reads.
const notBool = "is not a boolean (true, false, 1, 0, t, f, TRUE, FALSE, True or False)"

// withoutHistory returns fs without their History (copied, not changed).
func withoutHistory(fs []Forecast) []Forecast {
	out := make([]Forecast, len(fs))
	for i, f := range fs {
		f.History = nil
		out[i] = f
	}
	return out
}

func (s *Server) forecasts(w http.ResponseWriter, r *http.Request) {
	withHistory, ok := history(w, r, false)
	if !ok {
		return
	}
	fs := s.backend.Forecasts(r.Context())
	if metric := r.URL.Query().Get("metric"); metric != "" {
		var metrics []string
		out := fs[:0:0]
		for _, f := range fs {
			metrics = append(metrics, f.Metric)
			if f.Metric == metric {
				out = append(out, f)
			}
		}
		if len(out) == 0 && len(fs) > 0 {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no forecast of metric %q: the policies forecast %s", metric,
				names(metrics)))
			return
		}
		fs = out
	}
	if !withHistory {
		fs = withoutHistory(fs)
	}
	s.writeJSON(w, r, nonNil(fs))
}

// names lists the distinct names of xs, sorted, comma-separated.
func names(xs []string) string {
	return strings.Join(slices.Compact(slices.Sorted(slices.Values(xs))), ", ")
}

// dotPart reports whether a path's LOCALITY has a "." or ".." part.
func dotPart(loc string) bool {
	for part := range strings.SplitSeq(loc, "/") {
		if part == "." || part == ".." {
			return true
		}
	}
	return false
}

// The forecast endpoint's pattern, and the endpoint as its errors name it.
const (
	forecastPattern = "GET /v1/forecast/{locality...}"
	forecastPath    = "GET /v1/forecast/LOCALITY"
)

// forecast answers GET /v1/forecast/LOCALITY[?metric=cpu]: every forecast of
// that locality (one per metric and policy; those not ready say why), with
// the history it starts from unless ?history=false; 400 for a LOCALITY
// that is not a locality's path form (nor, so, a policy's name), 404 for
// one nothing forecasts.
func (s *Server) forecast(w http.ResponseWriter, r *http.Request) {
	withHistory, ok := history(w, r, true)
	if !ok {
		return
	}
	loc := r.PathValue("locality")
	if dotPart(loc) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("locality %q has a . or .. part, which a path cannot carry as a name: %s takes a locality's path form, DATACENTER[/NODE_POOL[/NODE_CLASS]], or a policy's name", loc, forecastPath))
		return
	}
	if _, err := policies.ParseLocality(loc); err != nil {
		// Every policy's name is a locality path too (one part, without
		// spaces), so this names neither.
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%v: %s takes a locality's path form, DATACENTER[/NODE_POOL[/NODE_CLASS]], or a policy's name", err, forecastPath))
		return
	}
	metric := r.URL.Query().Get("metric")
	var out []Forecast
	all := s.backend.Forecasts(r.Context())
	var metrics, locs []string // the locality's metrics; every locality forecast
	for _, f := range all {
		locs = append(locs, f.Locality)
		if f.Locality == loc || f.Policy == loc {
			metrics = append(metrics, f.Metric)
			if metric == "" || f.Metric == metric {
				out = append(out, f)
			}
		}
	}
	if len(out) == 0 {
		what := "locality " + strconv.Quote(loc)
		if metric != "" {
			what += " metric " + strconv.Quote(metric)
		}
		why := "no policy forecasts it"
		var pols []string // the loaded policies that forecast loc
		if len(metrics) == 0 {
			for _, p := range s.backend.Policies(r.Context()) {
				if p.Locality == loc || p.Name == loc {
					pols = append(pols, p.Name)
				}
			}
		}
		forecastsIt := "policy " + names(pols) + " forecasts it"
		if len(pols) > 1 {
			forecastsIt = "policies " + names(pols) + " forecast it"
		}
		switch st := s.backend.Status(r.Context()); {
		case len(metrics) > 0:
			// A metric the locality's policies do not forecast.
			why = "its policies forecast " + names(metrics)
		case len(all) == 0 && !st.IsLeader:
			// A follower answers the leader's last cycle, which has none.
			why = "this agent does not lead, and the leader (" + st.Leader + ") has published no forecast yet"
		case len(pols) > 0 && len(all) == 0 && st.LastCycle == nil:
			why = forecastsIt + ", but this agent leads and has finished no cycle yet"
		case len(pols) > 0 && len(all) == 0 && st.LastCycle.Error != "":
			why = forecastsIt + ", but the last cycle failed: " + st.LastCycle.Error
		case len(pols) > 0:
			why = forecastsIt + ", but the last cycle did not (a policy loaded since is forecast from the next cycle)"
		case len(all) > 0:
			why += "; the localities forecast: " + names(locs)
		}
		writeError(w, http.StatusNotFound, "no forecast for "+what+": "+why)
		return
	}
	if !withHistory {
		out = withoutHistory(out)
	}
	s.writeJSON(w, r, out)
}

func (s *Server) hotspots(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, nonNil(s.backend.Hotspots(r.Context())))
}

func (s *Server) anomalies(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, nonNil(s.backend.Anomalies(r.Context())))
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// writeJSON answers r with v as JSON and 200 (see writeJSONStatus).
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	s.writeJSONStatus(w, r, http.StatusOK, v)
}

// writeJSONStatus answers r with code and v as JSON. v is encoded before
// anything is sent: an answer JSON cannot carry (a NaN or an infinity,
// which encoding/json refuses) is a 500 naming the value and where it is,
// logged, rather than the status with a body cut short where the encoder
// stopped.
func (s *Server) writeJSONStatus(w http.ResponseWriter, r *http.Request, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		msg := fmt.Sprintf("%s %s: the answer cannot be encoded as JSON: %v", r.Method, r.URL.Path, err)
		if where, val, ok := nonFinite(v); ok {
			msg = fmt.Sprintf("%s %s: the answer cannot be encoded as JSON: %s is %v, which JSON cannot carry", r.Method, r.URL.Path, where, val)
		}
		s.log.Error("answer not encoded", "method", r.Method, "path", r.URL.Path, "error", msg)
		w.Header().Del("Location")
		w.Header().Del(IndexHeader)
		writeError(w, http.StatusInternalServerError, msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// jsonErrors serves h, whose error answers are not the API's (promhttp
// answers a registry it cannot gather with a 500 in plain text), and
// answers those as the API's JSON errors, logged; other answers pass as
// they are.
func (s *Server) jsonErrors(h http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b := &bufferedAnswer{header: http.Header{}}
		h.ServeHTTP(b, r)
		if b.code >= 400 {
			msg := fmt.Sprintf("%s %s: %s", r.Method, r.URL.Path, strings.Join(strings.Fields(b.body.String()), " "))
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", msg)
			writeError(w, b.code, msg)
			return
		}
		maps.Copy(w.Header(), b.header)
		if b.code != 0 {
			w.WriteHeader(b.code)
		}
		_, _ = w.Write(b.body.Bytes())
	}
}

// bufferedAnswer holds an answer until its handler has written it all.
type bufferedAnswer struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedAnswer) Header() http.Header { return b.header }

func (b *bufferedAnswer) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

func (b *bufferedAnswer) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}

// nonFinite finds the first NaN or infinite float in v, in the order JSON
// would write it, and where it is as a path of JSON names and indexes
// ("[0].bands[2][5]"); ok is false when there is none.
func nonFinite(v any) (where string, val float64, ok bool) {
	return nonFiniteIn(reflect.ValueOf(v), "")
}

func nonFiniteIn(v reflect.Value, path string) (string, float64, bool) {
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			if path == "" {
				path = "the value"
			}
			return path, f, true
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return nonFiniteIn(v.Elem(), path)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if w, f, ok := nonFiniteIn(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); ok {
				return w, f, true
			}
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			if w, f, ok := nonFiniteIn(v.MapIndex(k), fmt.Sprintf("%s[%q]", path, fmt.Sprint(k))); ok {
				return w, f, true
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			if w, f, ok := nonFiniteIn(v.Field(i), p); ok {
				return w, f, true
			}
		}
	}
	return "", 0, false
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(Error{Error: msg})
}

// errorStatus is the status a backend's error calls for: ErrInvalid 400,
// ErrNotFound 404, ErrConflict 409, ErrQueueFull 429, ErrNomadRefused 502,
// ErrUnavailable 503 (also when the request's context ended first),
// anything else 500.
func errorStatus(err error) int {
	switch {
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrQueueFull):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrNomadRefused):
		return http.StatusBadGateway
	case errors.Is(err, ErrUnavailable),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// backendError answers a backend's err with errorStatus(err) and its
// message, logging the failures on the agent's side (5xx).
func (s *Server) backendError(w http.ResponseWriter, r *http.Request, err error) {
	code := errorStatus(err)
	if code >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	writeError(w, code, ErrorMessage(err))
}

// ErrorMessage is err's text without the word of the sentinel that chose
// its status (": not found", ": conflict", ": unavailable", ": Nomad
// refused the agent's call"), which the
// status line says already; a follower passing on the leader's answer had
// added it twice. The API's error bodies and the dashboard's pages say it so.
func ErrorMessage(err error) string {
	msg := err.Error()
	for _, kind := range []error{ErrInvalid, ErrNotFound, ErrConflict, ErrQueueFull, ErrUnavailable, ErrNomadRefused} {
		if !errors.Is(err, kind) {
			continue
		}
		for {
			t, ok := strings.CutSuffix(msg, ": "+kind.Error())
			if !ok || t == "" {
				break
			}
			msg = t
		}
	}
	return msg
}

// forecastCollector exports the latest forecasts as
// foreshape_forecast{policy,locality,metric,horizon,quantile} gauges so that
// Nomad Autoscaler and Grafana can use predicted values.
type forecastCollector struct {
	backend  Backend
	horizons []time.Duration
}

var forecastDesc = prometheus.NewDesc("foreshape_forecast",
	"Forecast value of a locality's metric at a horizon and quantile (quantile \"mean\" for the point forecast).",
	[]string{"policy", "locality", "metric", "horizon", "quantile"}, nil)

var hotspotDesc = prometheus.NewDesc("foreshape_hotspot_probability",
	"Probability that a locality's metric crosses its headroom line within the policy's horizon.",
	[]string{"policy", "locality", "metric"}, nil)

func (c *forecastCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- forecastDesc
	ch <- hotspotDesc
}

func (c *forecastCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fs := c.backend.Forecasts(ctx)
	sort.Slice(fs, func(i, j int) bool { return fs[i].Series+fs[i].Policy < fs[j].Series+fs[j].Policy })
	for _, f := range fs {
		if !f.Ready() {
			continue // warming up, stale or failed: no value to export
		}
		for _, h := range c.horizons {
			i := stepIndex(f, h)
			if i < 0 {
				continue
			}
			hl := formatHorizon(h)
			ch <- prometheus.MustNewConstMetric(forecastDesc, prometheus.GaugeValue, f.Mean[i], f.Policy, f.Locality, f.Metric, hl, "mean")
			for qi, q := range f.Quantiles {
				ch <- prometheus.MustNewConstMetric(forecastDesc, prometheus.GaugeValue, f.Bands[qi][i],
					f.Policy, f.Locality, f.Metric, hl, strconv.FormatFloat(q, 'f', -1, 64))
			}
		}
		p := 0.0
		if f.Hotspot != nil {
			p = f.Hotspot.Probability
		}
		ch <- prometheus.MustNewConstMetric(hotspotDesc, prometheus.GaugeValue, p, f.Policy, f.Locality, f.Metric)
	}
}

// stepIndex returns the index of the forecast step h after the origin, or -1.
func stepIndex(f Forecast, h time.Duration) int {
	for i, t := range f.Times {
		if d := t.Sub(f.Origin); d == h {
			if i < len(f.Mean) {
				return i
			}
		} else if d > h {
			return -1
		}
	}
	return -1
}

// formatHorizon writes d as a policy would: "30m", "1h", "1h30m" (Go
// writes "30m0s", "1h0m0s"), keeping every digit: cutting "0s" and "0m"
// off whatever ended in them made "30m0s" "3".
func formatHorizon(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
