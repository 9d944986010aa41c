package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
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
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/backoff"
	"github.com/foreshape/foreshape/internal/failing"
	nomadsource "github.com/foreshape/foreshape/plugins/source/nomad"
)

// Client is a client agent (server.enabled = false). It runs beside a
// Nomad client, reads that node's host (and, when the leader asks,
// allocation) stats from the local Nomad agent once per cycle, and reports
// them to the leader through any server of server.retry_join; the leader
// then does not ask Nomad for that node. Its HTTP API answers /v1/health
// itself and forwards every other request to the leader.
//
// It holds no replicated state and never writes to Nomad.
type Client struct {
	log   hclog.Logger
	opts  Options
	clock Clock
	cfg   *config.Config
	name  string
	// read are the digests of the files read at the start
	// (preflight.Start.Read).
	read map[string][sha256.Size]byte
	// tls is what its HTTP API and its calls to the servers present and
	// trust, which a reload rotates; nil without TLS.
	tls *cluster.TLS

	nomad    *nomadapi.Client
	peers    *peerClient
	static   []string
	discover func(context.Context) ([]string, error)

	tokens  atomic.Pointer[[]string] // acl.token_file's, when acl is enabled
	readTok atomic.Pointer[[]string] // acl.read_token_file's, which may only read
	httpAdv string
	// The HTTP API and the Consul registration (serve.go).
	frontDoor

	mu       sync.Mutex
	nodeID   string
	nodeName string
	server   string // the Raft address of the server last reported to
	reply    reportReply
	lastSent time.Time
	// refresh serialises the reports made to find a leader that moved.
	refresh sync.Mutex

	// metrics is the client agent's own /v1/metrics (nil with
	// telemetry.prometheus_metrics = false) over registry; tel is what
	// it counts.
	metrics  http.Handler
	registry *prometheus.Registry
	tel      clientTelemetry

	closeOnce sync.Once
}

// NewClient builds a client agent from a validated configuration with
// server.enabled = false. It binds the HTTP listener; Run starts the work.
func NewClient(cfg *config.Config, opts Options) (*Client, error) {
	if cfg.Server.Enabled {
		return nil, errors.New("agent: server.enabled = true: this is a server; start it with New")
	}
	start, diags := preflight.Check(cfg, preflight.Options{})
	if err := preflight.Err(diags); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = hclog.New(&hclog.LoggerOptions{Name: "foreshape", Level: hclog.LevelFromString(cfg.LogLevel), JSONFormat: cfg.LogJSON})
	}
	c := &Client{log: log.Named("client"), opts: opts, clock: opts.Clock, cfg: cfg, nodeID: cfg.Nomad.NodeID}
	if c.clock == nil {
		c.clock = WallClock{}
	}
	c.name, c.read, c.tls = start.Name, start.Read, start.TLS
	c.nomad = start.Nomad
	c.tokens.Store(&start.Tokens)
	c.readTok.Store(&start.ReadTokens)
	var err error
	if c.static, c.discover, err = joinTargets(cfg, start.Consul); err != nil {
		return nil, err
	}
	c.peers = newPeerClient(cfg, start.ClusterTLS())
	c.registry = prometheus.NewRegistry()
	c.tel = newClientTelemetry(c.registry)
	if cfg.Telemetry.PrometheusMetrics {
		c.metrics = promhttp.HandlerFor(c.registry, promhttp.HandlerOpts{})
	}

	l, err := net.Listen("tcp", cfg.HTTP.Address)
	if err != nil {
		return nil, fmt.Errorf("agent: http listener on %s: %w", cfg.HTTP.Address, err)
	}
	var h http.Handler = c
	if start.TLS != nil {
		l = tls.NewListener(l, serverTLS(start.TLS, cfg.TLS.VerifyIncoming))
		if cfg.TLS.VerifyIncoming {
			h = requireClientCert(h)
		}
	}
	c.listener = l
	c.httpAdv = httpAdvertise(cfg, l.Addr())
	c.httpSrv = newHTTPServer(h)
	if cfg.Consul.Enabled {
		reg := registration{Name: c.name, Client: true, HTTPAddr: c.httpAdv, TLS: cfg.TLS.Enabled(), Version: opts.Version,
			Role: func() string { return roleClient }}
		if c.consul, err = newConsulRegistration(start.Consul, cfg.Consul, reg, log); err != nil {
			l.Close()
			return nil, err
		}
	}
	return c, nil
}

// HTTPAddr is the address the API listens on.
func (c *Client) HTTPAddr() string { return c.listener.Addr().String() }

// Run reports until ctx is done, serving the HTTP API meanwhile.
func (c *Client) Run(ctx context.Context) error {
	report := func(ctx context.Context) error {
		c.reportLoop(ctx)
		return nil
	}
	return c.serve(ctx, c.log, time.Minute, report)
}

// Close releases the listener, then waits for the Consul deregistration
// Run started, at most 5 s after Run's stop began. It is safe to call twice.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.listener.Close()
		c.leaving.Wait()
	})
	return nil
}

// Reload applies a new configuration's log level and ACL tokens (the token
// file is read again) after the checks the server's Reload makes; every
// other change needs a restart and is logged by name. When a check fails
// the client keeps what it runs and Reload returns why.
func (c *Client) Reload(cfg *config.Config) error {
	run, start, err := checkReload(c.cfg, cfg, preflight.Options{})
	if err != nil {
		return err
	}
	c.tokens.Store(&start.Tokens)
	c.readTok.Store(&start.ReadTokens)
	applyLogSettings(c.log, c.cfg, run, cfg)
	rotateTLS(c.log, c.tls, c.read, start)
	logChangedFiles(c.log, c.read, start.Read)
	c.cfg = run
	c.log.Info("reloaded")
	return nil
}

// reportLoop finds its Nomad node, then reports once per the leader's
// cycle interval.
func (c *Client) reportLoop(ctx context.Context) {
	var wait, retry time.Duration
	// A changed failure is said at once: only the first was, and the
	// log kept naming it after another cause had taken its place.
	var fails failing.Streak
	for ctx.Err() == nil {
		err := c.reportOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		c.tel.reported(err, time.Now())
		if err != nil {
			retry = backoff.Next(retry)
			wait = retry
			fails.Fail(c.log, time.Now(), "report failed; retrying", err, "backoff", retry)
		} else {
			retry = 0
			c.mu.Lock()
			fails.OK(c.log, time.Now(), "reporting again", "server", c.server)
			wait = c.reply.Interval
			c.mu.Unlock()
			if wait <= 0 {
				wait = 10 * time.Second
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// reportOnce reads the node's usage and sends it to a server.
func (c *Client) reportOnce(ctx context.Context) error {
	id, name, err := c.node(ctx)
	if err != nil {
		return err
	}
	now, err := c.clock.Now(ctx)
	if err != nil {
		return fmt.Errorf("data time: %w", err)
	}
	c.mu.Lock()
	allocs := c.reply.AllocStats
	c.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	usage, err := nomadsource.ReadReport(rctx, c.nomad, id, allocs)
	cancel()
	if err != nil {
		return err
	}
	r := clientReport{NodeID: id, NodeName: name, Name: c.name, HTTPAddress: c.httpAdv, Version: c.opts.Version, Time: now, Usage: usage}
	return c.send(ctx, r)
}

// send reports to the last server that took a report, or else to each
// known server in random order until one takes it.
func (c *Client) send(ctx context.Context, r clientReport) error {
	c.mu.Lock()
	last := c.server
	c.mu.Unlock()
	servers := slices.Clone(c.static)
	var lookup error
	if c.discover != nil {
		more, err := c.discover(ctx)
		if err != nil {
			c.log.Debug("server lookup failed", logKeyError, err)
			lookup = err
		}
		servers = append(servers, more...)
	}
	rand.Shuffle(len(servers), func(i, j int) { servers[i], servers[j] = servers[j], servers[i] })
	if last != "" {
		servers = append([]string{last}, slices.DeleteFunc(servers, func(s string) bool { return s == last })...)
	}
	if len(servers) == 0 {
		if lookup != nil {
			return fmt.Errorf("no server to report to: %w", lookup)
		}
		return errors.New("no server to report to (server.retry_join found none)")
	}
	var errs []error
	for _, s := range servers {
		var reply reportReply
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.peers.rpc.Call(cctx, s, opReport, r, &reply)
		cancel()
		if err == nil {
			c.mu.Lock()
			if c.server != s || c.reply.Leader != reply.Leader {
				c.log.Info("reporting", "server", s, "leader", reply.Leader, "interval", reply.Interval, "alloc_stats", reply.AllocStats)
			}
			c.server, c.reply, c.lastSent = s, reply, time.Now()
			c.mu.Unlock()
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("no server took the report: %w", errors.Join(errs...))
}

// node returns the Nomad node this agent reports on: nomad.node_id, or
// the local Nomad agent's own client node.
func (c *Client) node(ctx context.Context) (id, name string, err error) {
	c.mu.Lock()
	id, name = c.nodeID, c.nodeName
	c.mu.Unlock()
	if id != "" && name != "" {
		return id, name, nil
	}
	q := (&nomadapi.QueryOptions{}).WithContext(ctx)
	if id == "" {
		// Agent().Self takes no context: stopped while the local Nomad
		// agent does not answer, the client agent waited for its 30 s.
		var self nomadapi.AgentSelf
		if _, err := c.nomad.Raw().Query("/v1/agent/self", &self, q); err != nil {
			return "", "", fmt.Errorf("asking the local Nomad agent for its node: %w", err)
		}
		if id = self.Stats["client"]["node_id"]; id == "" {
			return "", "", errors.New("the local Nomad agent runs no client (set nomad.node_id to the node this agent reports on)")
		}
	}
	n, _, err := c.nomad.Nodes().Info(id, q)
	if err != nil {
		return "", "", fmt.Errorf("nomad node %s: %w", id, err)
	}
	c.mu.Lock()
	c.nodeID, c.nodeName = n.ID, n.Name
	c.mu.Unlock()
	c.log.Info("reporting on nomad node", "node_id", n.ID, "node_name", n.Name)
	return n.ID, n.Name, nil
}

// ServeHTTP answers /v1/health and /v1/ready (a client agent keeps no
// state to catch up with: it is ready while it serves) and forwards every
// other request to the leader's HTTP API, after checking its token when
// acl is enabled (the leader checks it again), but for the dashboard's,
// which the leader's dashboard checks.
func (c *Client) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if (r.URL.Path == "/v1/health" || r.URL.Path == "/v1/ready") && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(api.Health{Status: "ok", Node: c.name})
		return
	}
	// The dashboard's pages are passed on unchecked: the leader's
	// dashboard checks them itself (its sign-in form, the cookie it sets,
	// its forms' CSRF field), where a browser sends no token header.
	dashboard := r.URL.Path == "/" || r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, "/ui/")
	if toks := *c.tokens.Load(); len(toks) > 0 && !dashboard {
		tok := r.Header.Get("X-Foreshape-Token")
		if tok == "" {
			tok = api.BearerToken(r.Header)
		}
		if why := api.Denied(r, tok, toks, *c.readTok.Load()); why != "" {
			c.log.Warn("request denied", "reason", why, "method", r.Method, "path", r.URL.Path, "remote_addr", r.RemoteAddr)
			writeAPIError(w, http.StatusForbidden, "permission denied: "+why)
			return
		}
	}
	if r.URL.Path == "/v1/metrics" {
		// Its own metrics: the leader's, forwarded, would be counted once
		// more for every client agent scraped.
		switch {
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.Header().Set("Allow", "GET, HEAD")
			writeAPIError(w, http.StatusMethodNotAllowed, r.Method+" /v1/metrics: /v1/metrics answers GET, HEAD only")
		case c.metrics == nil:
			writeAPIError(w, http.StatusNotFound, "no such endpoint: GET /v1/metrics (telemetry.prometheus_metrics = false)")
		default:
			c.metrics.ServeHTTP(w, r)
		}
		return
	}
	c.mu.Lock()
	leader := c.reply.LeaderHTTP
	c.mu.Unlock()
	if leader == "" {
		writeAPIError(w, http.StatusServiceUnavailable, "this client agent has not reached a server yet; ask a server")
		return
	}
	if by := r.Header.Get(forwardedHeader); by != "" {
		writeAPIError(w, http.StatusServiceUnavailable, "a request forwarded by "+by+" reached a client agent; ask a server")
		return
	}
	c.forward(w, r, leader)
}

// maxForwardedBody bounds the request body a client agent holds to send
// again: no request of the API but a snapshot upload comes near it, and
// that one is passed on as it arrives (uploadBody).
const maxForwardedBody = 4 << 20

// uploadBody is a snapshot upload's body, passed on to the leader as it
// arrives rather than held: a backup has no size limit. It counts what
// the forward has read of it, so that the forward is retried at another
// leader only while none of it has gone.
type uploadBody struct {
	r    io.Reader
	read int64
}

func (b *uploadBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += int64(n)
	return n, err
}

// errNotLeader is a forwarded request's answer from a server that no
// longer leads (notLeaderHeader).
var errNotLeader = errors.New("the server answered that it does not lead")

// forward passes r to the leader's HTTP API at leader, the address the
// last report's reply named. The leader may have moved since (a new
// election, a server replaced by a rolling update, which serves its API
// at a new port): when nothing listens there, or the server there says it
// no longer leads, the agent reports at once, which names the leader of
// the moment, and sends the request there, once. Neither failure reached
// a handler, so nothing runs twice.
func (c *Client) forward(w http.ResponseWriter, r *http.Request, leader string) {
	var body []byte
	var upload *uploadBody
	if api.IsSnapshotUpload(r) {
		// Passed on as it arrives, for as long as the leader reads it, as
		// a follower does.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(api.SnapshotReadTimeout))
		upload = &uploadBody{r: r.Body}
	} else {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxForwardedBody))
		if err != nil {
			writeAPIError(w, http.StatusRequestEntityTooLarge, "reading the request body: "+err.Error())
			return
		}
	}
	for retried := false; ; retried = true {
		var failed error
		rp := proxyTo(c.peers, leader, c.name, nil, 0)
		if !retried {
			rp.ModifyResponse = func(resp *http.Response) error {
				if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(notLeaderHeader) != "" {
					return errNotLeader
				}
				return nil
			}
			answer := rp.ErrorHandler
			rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
				var op *net.OpError
				if errors.Is(err, errNotLeader) || (errors.As(err, &op) && op.Op == "dial") {
					failed = err
					return
				}
				answer(w, r, err)
			}
		}
		out := r.Clone(r.Context())
		out.Body, out.ContentLength = http.NoBody, 0
		switch {
		case upload != nil:
			out.Body, out.ContentLength = io.NopCloser(upload), r.ContentLength
		case len(body) > 0:
			out.Body, out.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		}
		rp.ServeHTTP(w, out)
		if failed == nil {
			return
		}
		if upload != nil && upload.read > 0 {
			// Part of the upload went to a server that then did not take
			// it, and what went is not held here to send again.
			writeAPIError(w, http.StatusServiceUnavailable, fmt.Sprintf("forwarding the snapshot upload to the leader at %s: %v, after %d bytes of it had gone; nothing was restored: retry", leader, failed, upload.read))
			return
		}
		now, err := c.refreshLeader(r.Context(), leader)
		if err != nil || now == "" || now == leader {
			why := fmt.Sprintf("forwarding to the leader at %s: %v", leader, failed)
			if err != nil {
				why += "; and no server named another leader: " + err.Error()
			}
			writeAPIError(w, http.StatusBadGateway, why)
			return
		}
		c.log.Info("the leader's API moved; forwarding there", "from", leader, "to", now, "why", failed)
		leader = now
	}
}

// refreshLeader reports at once and returns the leader's HTTP address the
// reply names, unless another request has already learnt one other than
// stale.
func (c *Client) refreshLeader(ctx context.Context, stale string) (string, error) {
	c.refresh.Lock()
	defer c.refresh.Unlock()
	c.mu.Lock()
	cur := c.reply.LeaderHTTP
	c.mu.Unlock()
	if cur != stale {
		return cur, nil
	}
	if err := c.reportOnce(ctx); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reply.LeaderHTTP, nil
}
