package sim

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Blocking query limits, as Nomad applies them.
const (
	defaultWait = 5 * time.Minute
	maxWait     = 10 * time.Minute
	maxBodyLog  = 512
	maxBody     = 8 << 20
)

// Handler returns the HTTP handler that answers Nomad's API (and the
// sim-only endpoints under /v1/sim/).
func (c *Cluster) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request)) {
		mux.HandleFunc(pattern, fn)
	}
	both := func(path string, fn func(w http.ResponseWriter, r *http.Request)) {
		h("PUT "+path, fn)
		h("POST "+path, fn)
	}
	h("GET /v1/nodes", c.listNodes)
	h("GET /v1/node/{id}", c.getNode)
	h("GET /v1/node/{id}/allocations", c.nodeAllocs)
	both("/v1/node/{id}/drain", c.drainNode)
	both("/v1/node/{id}/eligibility", c.nodeEligibility)
	both("/v1/node/{id}/purge", c.purgeNode)
	h("GET /v1/allocations", c.listAllocs)
	h("GET /v1/allocation/{id}", c.getAlloc)
	both("/v1/allocation/{id}/stop", c.stopAllocHTTP)
	h("GET /v1/client/allocation/{id}/stats", c.allocStatsHTTP)
	h("GET /v1/client/stats", c.clientStats)
	h("GET /v1/jobs", c.listJobs)
	both("/v1/jobs", c.registerJob)
	h("GET /v1/job/{id}", c.getJob)
	both("/v1/job/{id}", c.registerJob)
	h("DELETE /v1/job/{id}", c.deregisterJob)
	h("GET /v1/job/{id}/allocations", c.jobAllocs)
	h("GET /v1/job/{id}/scale", c.scaleStatusHTTP)
	both("/v1/job/{id}/scale", c.scaleJob)
	h("GET /v1/job/{id}/deployment", c.jobDeployment)
	h("GET /v1/job/{id}/deployments", c.jobDeployments)
	h("GET /v1/job/{id}/evaluations", c.jobEvals)
	h("GET /v1/job/{id}/summary", c.jobSummaryHTTP)
	h("GET /v1/evaluations", c.listEvals)
	h("GET /v1/evaluation/{id}", c.getEval)
	h("GET /v1/deployment/{id}", c.getDeployment)
	both("/v1/deployment/allocation-health/{id}", c.setAllocHealth)
	h("GET /v1/operator/scheduler/configuration", c.getSchedConfig)
	both("/v1/operator/scheduler/configuration", c.setSchedConfig)
	h("GET /v1/agent/self", c.agentSelf)
	h("GET /v1/agent/members", c.agentMembers)
	h("GET /v1/status/leader", c.statusLeader)
	h("GET /v1/status/peers", c.statusPeers)
	h("GET /v1/regions", c.regions)
	h("GET /v1/node/pools", c.nodePools)
	h("GET /v1/deployments", c.listDeployments)
	both("/v1/job/{id}/evaluate", c.evaluateJob)
	both("/v1/node/{id}/evaluate", c.evaluateNode)
	h("GET /v1/metrics", c.metrics)
	h("GET /v1/sim/truth", c.simTruth)
	h("GET /v1/sim/truth/summary", c.simTruthSummary)
	h("GET /v1/sim/faults", c.simGetFaults)
	both("/v1/sim/faults", c.simSetFaults)
	h("GET /v1/sim/clock", c.simClock)
	both("/v1/sim/step", c.simStep)
	both("/v1/sim/allocation/{id}/fail", c.simFailAlloc)
	both("/v1/sim/nodes", c.simAddNodes)
	return c.middleware(mux)
}

// statusWriter remembers the status code for the request log.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// middleware records every mutating request (refused, faulted or served),
// checks tokens and injects faults.
func (c *Cluster) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			c.serve(w, r, next)
			return
		}
		// The body is read first: until it is, the server would not notice
		// a client that gives up on a hanging request.
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		sw := &statusWriter{ResponseWriter: w}
		var held heldCall
		if err != nil {
			http.Error(sw, "failed to read request body", http.StatusBadRequest)
		} else {
			r.Body = io.NopCloser(bytes.NewReader(body))
			held = c.serve(sw, r, next)
		}
		if len(body) > maxBodyLog {
			body = body[:maxBodyLog]
		}
		c.mu.Lock()
		c.truth.Requests = append(c.truth.Requests, RequestRecord{
			Time: c.now, Method: r.Method, Path: r.URL.RequestURI(), Status: sw.code, Body: string(body),
			Held: held.held, Applied: held.applied,
		})
		c.unlock()
		c.log.Trace("write request", logKeyMethod, r.Method, logKeyPath, r.URL.Path, logKeyCode, sw.code)
	})
}

// heldCall is what a hold fault did to a request: held it, and with Apply
// served it (the status its effect was served with) without answering.
type heldCall struct {
	held    bool
	applied int
}

// heldResponse keeps the answer of a request a hold fault applied.
type heldResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (h *heldResponse) Header() http.Header { return h.header }

func (h *heldResponse) WriteHeader(code int) {
	if h.code == 0 {
		h.code = code
	}
}

func (h *heldResponse) Write(p []byte) (int, error) {
	if h.code == 0 {
		h.code = http.StatusOK
	}
	return h.body.Write(p)
}

// serve checks the token and injects faults before next.
func (c *Cluster) serve(w http.ResponseWriter, r *http.Request, next http.Handler) heldCall {
	switch p, known := c.policy(r); {
	case known && (p == nil || p.allows(r)):
		if p != nil {
			r = r.WithContext(context.WithValue(r.Context(), policyKey{}, p))
		}
	case !known:
		if msg := notAToken(r); msg != "" {
			writeText(w, r, http.StatusInternalServerError, msg)
			return heldCall{}
		}
		refuse(w, r)
		return heldCall{}
	default:
		// A token Nomad knows, or none (the anonymous token), whose
		// policy lacks the call's grant.
		switch id, hidden := c.lookupFirst(r); {
		case hidden:
			// Nomad hides an allocation the token may not read as if it
			// did not exist, in words other than its 404's.
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = fmt.Fprintf(w, "Unknown allocation %q", id)
			return heldCall{}
		case id == "":
			refuse(w, r)
			return heldCall{}
		}
		// An allocation that does not exist is answered as without ACLs
		// (404 or the lookup's failure).
	}
	kind, latency := c.faultFor(r.Method, r.URL.Path)
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-r.Context().Done():
			t.Stop()
			return heldCall{}
		case <-t.C:
		}
	}
	// wait holds the request until the client gives up (true) or maxWait.
	wait := func() bool {
		t := time.NewTimer(maxWait)
		defer t.Stop()
		select {
		case <-r.Context().Done():
			return true
		case <-t.C:
			return false
		}
	}
	switch kind {
	case "timeout":
		if !wait() {
			http.Error(w, "simulated fault: timeout", http.StatusGatewayTimeout)
		}
		return heldCall{}
	case "hold":
		c.log.Info("fault: holding a request; it will not take effect", logKeyMethod, r.Method, logKeyPath, r.URL.Path)
		if !wait() {
			http.Error(w, "simulated fault: held", http.StatusGatewayTimeout)
		}
		return heldCall{held: true}
	case "hold-apply":
		res := &heldResponse{header: http.Header{}}
		next.ServeHTTP(res, r)
		c.log.Info("fault: holding the answer of a request that took effect", logKeyMethod, r.Method, logKeyPath, r.URL.Path, logKeyCode, res.code)
		if !wait() {
			maps.Copy(w.Header(), res.header)
			w.WriteHeader(res.code)
			_, _ = w.Write(res.body.Bytes())
		}
		return heldCall{held: true, applied: res.code}
	case "error":
		http.Error(w, "simulated fault: internal error", http.StatusInternalServerError)
		return heldCall{}
	}
	next.ServeHTTP(w, r)
	return heldCall{}
}

// noACL are the paths Nomad answers without a token when its ACLs are on
// (its metrics too, to any token or none).
var noACL = map[string]bool{"/v1/status/leader": true, "/v1/status/peers": true, "/v1/regions": true, "/v1/metrics": true}

// policy tells how r is to be served: known false for a token Nomad does
// not know (refused whatever it asks); else its policy, nil for a
// management token, also when the scenario sets no tokens or r's path
// needs none, the empty policy for a request without a token (the
// anonymous token, which has no policy).
func (c *Cluster) policy(r *http.Request) (p *Policy, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.tokens) == 0 || noACL[r.URL.Path] {
		return nil, true
	}
	tok := tokenOf(r)
	if tok == "" {
		return &Policy{}, true
	}
	p, known = c.tokens[tok]
	return p, known
}

// tokenOf is the secret r carries, "" for none (the anonymous token).
func tokenOf(r *http.Request) string {
	tok := r.Header.Get("X-Nomad-Token")
	if tok == "" {
		// As Nomad: "<scheme> <value>", the scheme "bearer" in any case,
		// the token the value's first word.
		if scheme, v, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "bearer") {
			tok, _, _ = strings.Cut(strings.TrimSpace(v), " ")
		}
	}
	return tok
}

// lookupFirst tells what Nomad does with a request from a token it knows
// (or none: the anonymous token) whose policy lacks the grant the request
// asks, when it names an allocation: reading, stopping it or its client
// stats look the allocation up before the token's grants are checked. For
// one that does not exist (or an ID that is no UUID) it returns the ID and
// hidden false: the request is served as without ACLs (404 in Nomad's
// words, or the lookup's failure). For one that exists, a read is hidden
// (true: 500 "Unknown allocation"); a stop or stats call is refused (id
// ""). Any other request is refused (id "").
func (c *Cluster) lookupFirst(r *http.Request) (id string, hidden bool) {
	p := r.URL.Path
	read := false
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/v1/client/allocation/") && strings.HasSuffix(p, "/stats"):
		id = strings.TrimSuffix(strings.TrimPrefix(p, "/v1/client/allocation/"), "/stats")
	case (r.Method == http.MethodPost || r.Method == http.MethodPut) && strings.HasPrefix(p, "/v1/allocation/") && strings.HasSuffix(p, "/stop"):
		id = strings.TrimSuffix(strings.TrimPrefix(p, "/v1/allocation/"), "/stop")
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/v1/allocation/"):
		id, read = strings.TrimPrefix(p, "/v1/allocation/"), true
	}
	if id == "" || strings.Contains(id, "/") {
		return "", false
	}
	c.mu.Lock()
	exists := len(id) == 36 && c.allocByID[id] != nil
	c.mu.Unlock()
	switch {
	case !exists:
		return id, false
	case read:
		return id, true
	}
	return "", false
}

// uuid is the form of an ACL token's secret (Nomad's helper.IsUUID).
var uuid = regexp.MustCompile(`(?i)^[\da-f]{8}-[\da-f]{4}-[\da-f]{4}-[\da-f]{4}-[\da-f]{12}$`)

// notAToken is what Nomad answers, 500, when r's secret is not one it
// knows and is no UUID on the calls that then try it as a workload
// identity (a signed JWT): /v1/agent/self, which the HTTP agent
// authenticates, and /v1/client/stats, which the server's RPC does. Its
// other calls refuse it as an unknown token (403); "" for any other
// request.
func notAToken(r *http.Request) string {
	tok := tokenOf(r)
	if tok == "" || uuid.MatchString(tok) || r.Method != http.MethodGet {
		return ""
	}
	switch r.URL.Path {
	case "/v1/agent/self":
		return "ACL token not found or invalid workload identity: " + notAnIdentity(tok)
	case "/v1/client/stats":
		return "rpc error: " + notAnIdentity(tok)
	}
	return ""
}

// notAnIdentity is why Nomad does not take tok as a workload identity
// (Nomad's Encrypter.VerifyClaim): go-jose parses it as a compact JWS,
// three dot-separated parts each in unpadded base64url and a protected
// header that is a JSON object, then Nomad looks up the signing key by the
// header's key ID; the simulator's keyring has none. Not modelled: the
// other header fields go-jose checks (jwk, x5c, …), and the second Nomad
// waits for a key it does not have.
func notAnIdentity(tok string) string {
	const parse = "failed to parse signed token: "
	if strings.Count(tok, ".") != 2 {
		return parse + "go-jose/go-jose: compact JWS format must have three parts"
	}
	var header []byte
	for i, part := range strings.SplitN(tok, ".", 3) {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(part, "="))
		if err != nil {
			return parse + err.Error()
		}
		if i == 0 {
			header = b
		}
	}
	var h map[string]*json.RawMessage
	if len(header) > 0 {
		if err := json.Unmarshal(header, &h); err != nil {
			if te := (*json.UnmarshalTypeError)(nil); errors.As(err, &te) {
				return parse + "json: cannot unmarshal " + te.Value + " into Go value of type jose.rawHeader"
			}
			return parse + err.Error()
		}
	}
	var kid string
	if v := h["kid"]; v != nil {
		if err := json.Unmarshal(*v, &kid); err != nil {
			return parse + fmt.Sprintf("failed to unmarshal key ID: %v: %#v", err, string(*v))
		}
	}
	if kid == "" {
		return "missing key ID header"
	}
	return fmt.Sprintf("operation cancelled: no such key %q in keyring", kid)
}

// refuse answers a request the ACLs refuse as Nomad does: 403 and the
// plain text "Permission denied".
func refuse(w http.ResponseWriter, r *http.Request) {
	writeText(w, r, http.StatusForbidden, "Permission denied")
}

// writeText answers code and a plain text, compressed for a client that
// accepts gzip (nomad/api asks for it), as Nomad compresses every answer.
func writeText(w http.ResponseWriter, r *http.Request, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, text)
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	w.Header().Add("Vary", "Accept-Encoding")
	w.WriteHeader(code)
	zw := gzip.NewWriter(w)
	_, _ = io.WriteString(zw, text)
	_ = zw.Close()
}

// SetTokens replaces the ACL tokens the cluster takes while it runs, as an
// operator creating or deleting tokens would; none turns the checks off.
func (c *Cluster) SetTokens(tokens []string) {
	c.SetACL(tokens, nil)
}

// SetACL replaces the ACL tokens the cluster takes while it runs:
// management tokens, and tokens with the policy policies maps them to.
// None turns the checks off.
func (c *Cluster) SetACL(management []string, policies map[string]Policy) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens = aclTokens(management, policies)
}

// aclTokens maps each token to its policy, nil for a management token.
func aclTokens(management []string, policies map[string]Policy) map[string]*Policy {
	tokens := map[string]*Policy{}
	for t, p := range policies {
		tokens[t] = &p
	}
	for _, t := range management {
		tokens[t] = nil
	}
	return tokens
}

// writeErr maps model errors to Nomad's status codes and plain-text bodies.
func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, ErrForbidden):
		code = http.StatusForbidden
	case errors.Is(err, ErrClockRunning):
		code = http.StatusConflict
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, err.Error())
}

func writeJSON(w http.ResponseWriter, index uint64, body []byte) {
	writeJSONAt(w, max(index, 1), body)
}

// writeJSONAt is writeJSON with the index as it is: a write that changed
// nothing answers at index 0, where a read answers at 1 at least.
func writeJSONAt(w http.ResponseWriter, index uint64, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Nomad-Index", strconv.FormatUint(index, 10))
	w.Header().Set("X-Nomad-KnownLeader", "true")
	w.Header().Set("X-Nomad-LastContact", "0")
	_, _ = w.Write(body)
}

// parseWait reads a blocking query's wait parameter ("5s", "250ms", or
// seconds as a bare number).
func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return defaultWait, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, err2 := strconv.Atoi(s)
		if err2 != nil {
			return 0, badRequest("Invalid wait time")
		}
		d = time.Duration(n) * time.Second
	}
	return min(d, maxWait), nil
}

// query answers a read, blocking while the request's index is not below
// the index of the given tables. fn runs under the cluster lock.
func (c *Cluster) query(w http.ResponseWriter, r *http.Request, fn func() (any, error), tables ...Table) {
	c.queryAt(w, r, func() (any, uint64, error) {
		out, err := fn()
		return out, 0, err
	}, tables...)
}

// queryAt is query for a read whose answer has its own index, as Nomad
// gives a single object's read its ModifyIndex: fn returns it (0 for the
// tables' index), and the read blocks while it is not above the request's
// index, waking when the tables change.
func (c *Cluster) queryAt(w http.ResponseWriter, r *http.Request, fn func() (any, uint64, error), tables ...Table) {
	q := r.URL.Query()
	var minIdx uint64
	if s := q.Get("index"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeErr(w, badRequest("Invalid index"))
			return
		}
		minIdx = v
	}
	wait, err := parseWait(q.Get("wait"))
	if err != nil {
		writeErr(w, err)
		return
	}
	if len(tables) == 0 {
		minIdx = 0 // client and agent endpoints do not block
	}
	var timer <-chan time.Time
	if minIdx > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	for {
		c.mu.Lock()
		idx := uint64(1)
		for _, t := range tables {
			idx = max(idx, c.tables[t])
		}
		if minIdx == 0 || idx > minIdx || timer == nil {
			out, own, err := fn()
			if own > 0 {
				idx = own
			}
			if minIdx == 0 || idx > minIdx || timer == nil || err != nil {
				var body []byte
				if err == nil {
					body, err = json.Marshal(out)
				}
				c.unlock()
				if err != nil {
					writeErr(w, err)
					return
				}
				writeJSON(w, idx, body)
				return
			}
		}
		ch := c.notify
		c.unlock()
		select {
		case <-ch:
		case <-timer:
			timer = nil
		case <-r.Context().Done():
			return
		}
	}
}

// write runs a mutation under the lock and answers with the new index.
func (c *Cluster) write(w http.ResponseWriter, fn func() (any, error)) {
	c.writeAt(w, func() (any, uint64, error) {
		out, err := fn()
		return out, 0, err
	})
}

// writeAt is write for a mutation that answers with an index of its own
// (a purge's is its deletion's, below its evaluations'); 0 answers with
// the new index, noIndex with 0 (a write that changed nothing).
func (c *Cluster) writeAt(w http.ResponseWriter, fn func() (any, uint64, error)) {
	c.mu.Lock()
	out, idx, err := fn()
	// Capacity freed by this write lets blocked evaluations run now, as
	// Nomad unblocks them when the plan applies.
	c.retryBlocked()
	var body []byte
	if err == nil {
		body, err = json.Marshal(out)
	}
	switch idx {
	case 0:
		idx = c.index
	case noIndex:
		idx = 0
	}
	c.unlock()
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSONAt(w, idx, body)
}

// noIndex is the index writeAt's function gives for an answer at index 0.
const noIndex = ^uint64(0)

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		return badRequest("%v", err)
	}
	return nil
}

// prefixOK reports whether id matches a list request's prefix (p, read
// once per request from its "prefix" parameter); an empty prefix matches all.
func prefixOK(id, p string) bool {
	return p == "" || strings.HasPrefix(id, p)
}

func (c *Cluster) listNodes(w http.ResponseWriter, r *http.Request) {
	prefix := r.URL.Query().Get("prefix")
	res, withOS := r.URL.Query().Get("resources") == "true", r.URL.Query().Get("os") == "true"
	c.query(w, r, func() (any, error) {
		out := make([]*api.NodeListStub, 0, len(c.nodes))
		for i := len(c.nodes) - 1; i >= 0; i-- {
			if n := c.nodes[i]; prefixOK(n.id, prefix) {
				out = append(out, c.nodeStub(n, res, withOS))
			}
		}
		return out, nil
	}, TableNodes)
}

// getNode answers with the node's ModifyIndex, as Nomad does: the node
// table's index also moves with its clients' allocation updates, which do
// not change the node.
func (c *Cluster) getNode(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.queryAt(w, r, func() (any, uint64, error) {
		n, err := c.apiNode(id)
		if err != nil {
			return nil, 0, err
		}
		if n == nil {
			return nil, 0, notFound("node not found")
		}
		return c.nodeAPI(n), n.modifyIdx, nil
	}, TableNodes)
}

func (c *Cluster) nodeAllocs(w http.ResponseWriter, r *http.Request) {
	id, p := r.PathValue("id"), policyOf(r.Context())
	c.query(w, r, func() (any, error) {
		out := []*api.Allocation{}
		n := c.nodeByID[id]
		if n == nil {
			n = c.purgedNodes[id]
		}
		if n == nil || (p != nil && !p.has("read-job")) {
			// Nomad does not check the node, and lists only the
			// allocations the token may read.
			return out, nil
		}
		for _, a := range sortedAllocs(n.history) {
			if a.job.purged {
				continue
			}
			out = append(out, c.allocAPI(a))
		}
		return out, nil
	}, TableAllocs)
}

func (c *Cluster) drainNode(w http.ResponseWriter, r *http.Request) {
	var req api.NodeUpdateDrainRequest
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	c.writeAt(w, func() (any, uint64, error) {
		out, err := c.setDrain(r.PathValue("id"), req.DrainSpec, req.MarkEligible, req.Meta)
		return out, answerIndex(out), err
	})
}

// answerIndex is the index a node update answers with: the one it wrote
// at, noIndex for none (an eligibility left as it was).
func answerIndex(out *nodeUpdateResponse) uint64 {
	switch {
	case out == nil:
		return 0
	case out.Index == 0:
		return noIndex
	}
	return out.Index
}

func (c *Cluster) nodeEligibility(w http.ResponseWriter, r *http.Request) {
	var req api.NodeUpdateEligibilityRequest
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	c.writeAt(w, func() (any, uint64, error) {
		out, err := c.setEligibility(r.PathValue("id"), req.Eligibility)
		return out, answerIndex(out), err
	})
}

func (c *Cluster) listAllocs(w http.ResponseWriter, r *http.Request) {
	prefix := r.URL.Query().Get("prefix")
	res := r.URL.Query().Get("resources") == "true"
	states := r.URL.Query().Get("task_states") != "false"
	c.query(w, r, func() (any, error) {
		var all []*alloc
		if _, other := otherNamespace(r); other {
			return []*api.AllocationListStub{}, nil
		}
		for _, j := range c.jobs {
			for _, a := range j.allocs {
				if prefixOK(a.id, prefix) {
					all = append(all, a)
				}
			}
		}
		out := make([]*api.AllocationListStub, 0, len(all))
		for _, a := range sortedAllocs(all) {
			st := c.allocStub(a, res)
			if !states {
				st.TaskStates = nil
			}
			out = append(out, st)
		}
		return out, nil
	}, TableAllocs)
}

func (c *Cluster) getAlloc(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.query(w, r, func() (any, error) {
		if len(id) != 36 {
			return nil, lookupFailed("alloc")
		}
		a := c.allocByID[id]
		if a == nil {
			return nil, notFound("alloc not found")
		}
		return c.allocAPI(a), nil
	}, TableAllocs)
}

// allocStopResponse is Nomad's answer to an allocation stop.
type allocStopResponse struct {
	EvalID string
	Index  uint64
}

func (c *Cluster) stopAllocHTTP(w http.ResponseWriter, r *http.Request) {
	c.write(w, func() (any, error) {
		ev, err := c.stopByAPI(r.PathValue("id"))
		if err != nil {
			return nil, err
		}
		return allocStopResponse{EvalID: ev.id, Index: c.index}, nil
	})
}

func (c *Cluster) allocStatsHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.query(w, r, func() (any, error) {
		if len(id) != 36 {
			return nil, lookupFailed("alloc")
		}
		a := c.allocByID[id]
		if a == nil {
			return nil, notFound("Unknown allocation %q", id)
		}
		if err := c.clientReachable(a.node); err != nil {
			return nil, err
		}
		return c.allocStats(a), nil
	})
}

func (c *Cluster) clientStats(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("node_id")
	c.query(w, r, func() (any, error) {
		if id == "" {
			return nil, badRequest("missing node_id: the simulator has no local client")
		}
		n, err := c.apiNode(id)
		if err != nil {
			return nil, err
		}
		if n == nil {
			return nil, notFound("Unknown node %s", id)
		}
		if err := c.clientReachable(n); err != nil {
			return nil, err
		}
		return c.hostStats(n), nil
	})
}

// clientReachable says whether the servers can reach n's client: a down
// node has no connection (Nomad answers 404 "No path to node"); a stats
// fault is a client that does not answer (an RPC error, 500).
func (c *Cluster) clientReachable(n *node) error {
	if n.status == api.NodeStatusDown || n.status == api.NodeStatusDisconnected {
		return notFound("No path to node")
	}
	if c.statsUnreachable(n) {
		return &codedError{kind: ErrUnreachable, msg: "Unexpected error: rpc error: i/o timeout"}
	}
	return nil
}

func (c *Cluster) listJobs(w http.ResponseWriter, r *http.Request) {
	prefix := r.URL.Query().Get("prefix")
	meta := r.URL.Query().Get("meta") == "true"
	c.query(w, r, func() (any, error) {
		out := []*api.JobListStub{}
		if _, other := otherNamespace(r); other {
			return out, nil
		}
		for _, j := range c.sortedJobs() {
			if prefixOK(j.id, prefix) {
				out = append(out, c.jobStub(j, meta))
			}
		}
		return out, nil
	}, TableJobs, TableJobSummaries)
}

func (c *Cluster) registerJob(w http.ResponseWriter, r *http.Request) {
	var req api.JobRegisterRequest
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if id := r.PathValue("id"); id != "" && req.Job != nil && (req.Job.ID == nil || *req.Job.ID != id) {
		writeErr(w, badRequest("Job ID does not match name"))
		return
	}
	c.write(w, func() (any, error) {
		if req.Job == nil {
			return nil, badRequest("Job must be specified")
		}
		if ns := jobNamespace(r, &req); req.Job.ID != nil && ns != api.DefaultNamespace {
			return nil, invalidJob(fmt.Sprintf("job %q is in nonexistent namespace %q", *req.Job.ID, ns))
		}
		if req.EnforceIndex && req.Job.ID != nil {
			cur := uint64(0)
			if j := c.jobs[*req.Job.ID]; j != nil && !j.purged {
				cur = j.jobModIdx
			}
			if cur != req.JobModifyIndex {
				return nil, rpcError("Enforcing job modify index %d: job exists with conflicting job modify index: %d", req.JobModifyIndex, cur)
			}
		}
		if c.registrationsRejected(r) {
			return nil, &codedError{kind: ErrForbidden, msg: registrationsDisabled}
		}
		if req.PreserveCounts && req.Job.ID != nil {
			if j := c.jobs[*req.Job.ID]; j != nil && !j.purged {
				for _, tg := range req.Job.TaskGroups {
					for _, g := range j.groups {
						if tg.Name != nil && *tg.Name == g.name {
							tg.Count = new(g.count)
						}
					}
				}
			}
		}
		ev, err := c.register(req.Job, nil, triggerRegister)
		if err != nil {
			return nil, err
		}
		j := c.jobs[*req.Job.ID]
		return &api.JobRegisterResponse{EvalID: ev.id, EvalCreateIndex: ev.createIdx, JobModifyIndex: j.jobModIdx}, nil
	})
}

// jobNamespace is the namespace a registration puts its job in, as Nomad
// chooses it: the request's namespace parameter, else the request body's,
// else the job's own, else "default".
func jobNamespace(r *http.Request, req *api.JobRegisterRequest) string {
	switch {
	case r.URL.Query().Get("namespace") != "":
		return r.URL.Query().Get("namespace")
	case req.Namespace != "":
		return req.Namespace
	case req.Job.Namespace != nil && *req.Job.Namespace != "":
		return *req.Job.Namespace
	}
	return api.DefaultNamespace
}

// otherNamespace returns the namespace r names when the simulator does not
// have it. It has "default" alone, as a fresh Nomad; "*" (every namespace)
// lists what is in it. Nomad answers a call in a namespace that does not
// exist as one in a namespace that holds nothing: its lists are empty and
// its jobs not found, while reads by an allocation's, deployment's or
// evaluation's ID ignore the namespace (TestFidelityOtherNamespace).
func otherNamespace(r *http.Request) (string, bool) {
	ns := r.URL.Query().Get("namespace")
	return ns, ns != "" && ns != api.DefaultNamespace && ns != "*"
}

// lookupJob finds the job a request about job id names (none in a
// namespace the simulator does not have).
func (c *Cluster) lookupJob(r *http.Request, id string) (*job, error) {
	j := c.jobs[id]
	if _, other := otherNamespace(r); j == nil || j.purged || other {
		return nil, notFound("job not found")
	}
	return j, nil
}

func (c *Cluster) getJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.query(w, r, func() (any, error) {
		j, err := c.lookupJob(r, id)
		if err != nil {
			return nil, err
		}
		return c.jobAPI(j), nil
	}, TableJobs)
}

func (c *Cluster) deregisterJob(w http.ResponseWriter, r *http.Request) {
	purge := r.URL.Query().Get("purge") == "true"
	c.write(w, func() (any, error) {
		if _, other := otherNamespace(r); other {
			return &api.JobDeregisterResponse{}, nil // as for an unknown job
		}
		ev, err := c.deregister(r.PathValue("id"), purge)
		if err != nil {
			return nil, err
		}
		if ev == nil {
			// Nomad deregisters an unknown job without an evaluation.
			return &api.JobDeregisterResponse{}, nil
		}
		return &api.JobDeregisterResponse{EvalID: ev.id, EvalCreateIndex: ev.createIdx, JobModifyIndex: c.index}, nil
	})
}

func (c *Cluster) jobAllocs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.query(w, r, func() (any, error) {
		j, err := c.lookupJob(r, id)
		if err != nil {
			// Nomad answers an unknown job's allocations with an empty list.
			return []*api.AllocationListStub{}, nil
		}
		out := []*api.AllocationListStub{}
		for _, a := range sortedAllocs(j.allocs) {
			out = append(out, c.allocStub(a, false))
		}
		return out, nil
	}, TableAllocs)
}

func (c *Cluster) scaleStatusHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.query(w, r, func() (any, error) {
		j, err := c.lookupJob(r, id)
		if err != nil {
			return nil, err
		}
		return c.scaleStatus(j), nil
	}, TableJobs, TableAllocs)
}

// registrationsDisabled is Nomad's answer, 403, to a registration or a
// scale the scheduler configuration rejects.
const registrationsDisabled = "Job registration, dispatch, and scale are disabled by the scheduler configuration"

// registrationsRejected reports whether the scheduler configuration
// rejects r, a registration or a scale: as Nomad's registrationsAreAllowed,
// only from a token that is no management token. With the ACLs off every
// request is a management token's, and is served.
func (c *Cluster) registrationsRejected(r *http.Request) bool {
	return c.schedCfg.RejectJobRegistration && policyOf(r.Context()) != nil
}

func (c *Cluster) scaleJob(w http.ResponseWriter, r *http.Request) {
	var req api.ScalingRequest
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	c.write(w, func() (any, error) {
		if c.registrationsRejected(r) {
			return nil, &codedError{kind: ErrForbidden, msg: registrationsDisabled}
		}
		_, other := otherNamespace(r)
		ev, j, err := c.scale(r.PathValue("id"), &req, other)
		if err != nil {
			return nil, err
		}
		out := &api.JobRegisterResponse{JobModifyIndex: j.jobModIdx}
		if ev != nil {
			out.EvalID, out.EvalCreateIndex = ev.id, ev.createIdx
		}
		return out, nil
	})
}

func (c *Cluster) jobDeployment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.query(w, r, func() (any, error) {
		j, err := c.lookupJob(r, id)
		if err != nil {
			return nil, nil // Nomad answers null for an unknown job
		}
		d := latestDeployment(j)
		if d == nil {
			return nil, nil
		}
		return c.deployAPI(d), nil
	}, TableDeployments)
}

func (c *Cluster) jobDeployments(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.query(w, r, func() (any, error) {
		j, err := c.lookupJob(r, id)
		if err != nil {
			return nil, err
		}
		out := []*api.Deployment{}
		for i := len(j.deploys) - 1; i >= 0; i-- {
			out = append(out, c.deployAPI(j.deploys[i]))
		}
		return out, nil
	}, TableDeployments)
}

func (c *Cluster) jobEvals(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.query(w, r, func() (any, error) {
		if _, err := c.lookupJob(r, id); err != nil {
			return nil, err
		}
		out := []*api.Evaluation{}
		for i := len(c.evals) - 1; i >= 0; i-- {
			if c.evals[i].jobID == id {
				out = append(out, c.evalAPI(c.evals[i]))
			}
		}
		return out, nil
	}, TableEvals)
}

func (c *Cluster) jobSummaryHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.query(w, r, func() (any, error) {
		j, err := c.lookupJob(r, id)
		if err != nil {
			return nil, err
		}
		return c.jobSummary(j), nil
	}, TableJobs, TableAllocs)
}

func (c *Cluster) listEvals(w http.ResponseWriter, r *http.Request) {
	prefix := r.URL.Query().Get("prefix")
	status := r.URL.Query().Get("status")
	c.query(w, r, func() (any, error) {
		out := []*api.Evaluation{}
		if _, other := otherNamespace(r); other {
			return out, nil
		}
		for i := len(c.evals) - 1; i >= 0; i-- {
			e := c.evals[i]
			if prefixOK(e.id, prefix) && (status == "" || e.status == status) {
				out = append(out, c.evalAPI(e))
			}
		}
		return out, nil
	}, TableEvals)
}

func (c *Cluster) getEval(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.query(w, r, func() (any, error) {
		if len(id) != 36 {
			return nil, rpcError("failed to lookup eval: eval lookup failed: index error: UUID must be 36 characters")
		}
		e := c.evalByID[id]
		if e == nil {
			return nil, notFound("eval not found")
		}
		return c.evalAPI(e), nil
	}, TableEvals)
}

// deploymentUpdateResponse is Nomad's answer to a change of a deployment.
type deploymentUpdateResponse struct {
	EvalID                string
	EvalCreateIndex       uint64
	DeploymentModifyIndex uint64
	RevertedJobVersion    *uint64
	Index                 uint64
}

// setAllocHealth sets the health of allocations of a running deployment,
// as an operator does for health_check = "manual" (Nomad's deployment
// endpoint, deployment watcher and state store): the IDs named healthy
// and unhealthy, each of the deployment, get that health and count in
// its group (a healthy one pushes the progress deadline on); any
// unhealthy one fails the deployment at once ("Failed due to unhealthy
// allocations"), rolling back to the latest stable version when that
// allocation's group has auto_revert. An evaluation of the job
// (deployment-watcher) follows. Refusals are Nomad's 500s.
func (c *Cluster) setAllocHealth(w http.ResponseWriter, r *http.Request) {
	var req api.DeploymentAllocHealthRequest
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	c.write(w, func() (any, error) {
		if len(req.HealthyAllocationIDs)+len(req.UnhealthyAllocationIDs) == 0 {
			return nil, rpcError("must specify at least one healthy/unhealthy allocation ID")
		}
		d := c.deployByID[r.PathValue("id")]
		if d == nil {
			return nil, rpcError("deployment not found")
		}
		if !d.active() {
			return nil, rpcError("can't set health of allocations for a terminal deployment")
		}
		var allocs []*alloc
		for _, id := range append(append([]string{}, req.HealthyAllocationIDs...), req.UnhealthyAllocationIDs...) {
			a := c.allocByID[id]
			switch {
			case a == nil:
				return nil, rpcError("unknown alloc %q", id)
			case a.deployID != d.id:
				return nil, rpcError("alloc %q is not part of deployment %q", id, d.id)
			}
			allocs = append(allocs, a)
		}
		j := d.job
		revert := false
		for i, a := range allocs {
			healthy := i < len(req.HealthyAllocationIDs)
			st := d.groups[a.grp.name]
			if st != nil {
				switch {
				case a.healthy != nil && *a.healthy:
					st.HealthyAllocs--
				case a.healthy != nil:
					st.UnhealthyAllocs--
				}
				if healthy {
					st.HealthyAllocs++
					if st.ProgressDeadline > 0 {
						st.RequireProgressBy = c.now.Add(st.ProgressDeadline)
					}
				} else {
					st.UnhealthyAllocs++
					revert = revert || st.AutoRevert
				}
			}
			a.healthy, a.healthAt = new(healthy), c.now
			c.touch(a)
		}
		var rollback *api.Job
		if len(req.UnhealthyAllocationIDs) > 0 {
			d.status, d.statusDesc = api.DeploymentStatusFailed, "Failed due to unhealthy allocations"
			if revert {
				rollback = c.rollbackTarget(j, d)
			}
		}
		d.modifyIdx = c.bump(TableDeployments)
		resp := &deploymentUpdateResponse{DeploymentModifyIndex: d.modifyIdx}
		if rollback != nil {
			resp.RevertedJobVersion = new(j.stableVersion)
			c.revert(j, rollback)
		}
		ev := c.newEval(j, triggerDeployment, "")
		c.reconcile(j, ev)
		resp.EvalID, resp.EvalCreateIndex, resp.Index = ev.id, ev.createIdx, c.index
		return resp, nil
	})
}

func (c *Cluster) getDeployment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.query(w, r, func() (any, error) {
		if len(id) != 36 {
			return nil, lookupFailed("deployment")
		}
		d := c.deployByID[id]
		if d == nil {
			return nil, notFound("deployment not found")
		}
		return c.deployAPI(d), nil
	}, TableDeployments)
}

func (c *Cluster) schedConfig() *api.SchedulerConfiguration {
	cfg := c.schedCfg
	cfg.CreateIndex, cfg.ModifyIndex = c.schedIdx[0], c.schedIdx[1]
	return &cfg
}

func (c *Cluster) getSchedConfig(w http.ResponseWriter, r *http.Request) {
	c.query(w, r, func() (any, error) {
		return &api.SchedulerConfigurationResponse{SchedulerConfig: c.schedConfig()}, nil
	}, TableScheduler)
}

func (c *Cluster) setSchedConfig(w http.ResponseWriter, r *http.Request) {
	var cfg api.SchedulerConfiguration
	if err := decode(r, &cfg); err != nil {
		writeErr(w, err)
		return
	}
	cas := r.URL.Query().Get("cas")
	c.write(w, func() (any, error) {
		switch cfg.SchedulerAlgorithm {
		case "":
			cfg.SchedulerAlgorithm = api.SchedulerAlgorithmBinpack
		case api.SchedulerAlgorithmBinpack, api.SchedulerAlgorithmSpread:
		default:
			return nil, badRequest("invalid scheduler algorithm: %v", cfg.SchedulerAlgorithm)
		}
		if cas != "" {
			want, err := strconv.ParseUint(cas, 10, 64)
			if err != nil {
				return nil, badRequest("Invalid cas index")
			}
			if want != c.schedIdx[1] {
				return &api.SchedulerSetConfigurationResponse{Updated: false}, nil
			}
		}
		c.schedCfg = cfg
		c.schedIdx[1] = c.bump(TableScheduler)
		return &api.SchedulerSetConfigurationResponse{Updated: true}, nil
	})
}

func (c *Cluster) agentSelf(w http.ResponseWriter, r *http.Request) {
	c.query(w, r, func() (any, error) {
		dc := c.serverDC()
		return &api.AgentSelf{
			Config: map[string]any{
				"Region": "global", "Datacenter": dc, "NodeName": "foreshape-sim",
				"Version": map[string]any{"Version": nomadVersion, "VersionMetadata": "sim"},
				"Server":  map[string]any{"Enabled": true}, "Client": map[string]any{"Enabled": false},
				"ACL": map[string]any{"Enabled": len(c.tokens) > 0},
			},
			Member: api.AgentMember{Name: serverName, Addr: "127.0.0.1", Port: 4648, Status: "alive",
				Tags: map[string]string{"region": "global", "dc": dc, "role": "nomad", "build": nomadVersion}},
			Stats: map[string]map[string]string{
				"nomad": {"leader": "true", "server": "true", "known_regions": "1"},
				"sim":   {"scenario": c.sc.Name, "virtual_time": c.now.Format(time.RFC3339)},
			},
		}, nil
	})
}

func (c *Cluster) statusLeader(w http.ResponseWriter, r *http.Request) {
	c.query(w, r, func() (any, error) { return serverRPCAddr, nil })
}

// serverDC is the datacenter of the one simulated server: the
// scenario's first.
func (c *Cluster) serverDC() string {
	if len(c.locOrder) > 0 {
		return c.locOrder[0].name
	}
	return "dc1"
}

// The one simulated server.
const (
	serverRPCAddr = "127.0.0.1:4647"
	serverName    = "foreshape-sim.global"
)

func (c *Cluster) statusPeers(w http.ResponseWriter, r *http.Request) {
	c.query(w, r, func() (any, error) { return []string{serverRPCAddr}, nil })
}

func (c *Cluster) regions(w http.ResponseWriter, r *http.Request) {
	c.query(w, r, func() (any, error) { return []string{"global"}, nil })
}

func (c *Cluster) agentMembers(w http.ResponseWriter, r *http.Request) {
	c.query(w, r, func() (any, error) {
		dc := c.serverDC()
		return &api.ServerMembers{ServerName: serverName, ServerRegion: "global", ServerDC: dc,
			Members: []*api.AgentMember{{Name: serverName, Addr: "127.0.0.1", Port: 4648, Status: "alive",
				Tags: map[string]string{"region": "global", "dc": dc, "role": "nomad", "build": nomadVersion}}}}, nil
	})
}

// nodePools lists Nomad's built-in pools and every pool a node names.
func (c *Cluster) nodePools(w http.ResponseWriter, r *http.Request) {
	prefix, policy := r.URL.Query().Get("prefix"), policyOf(r.Context())
	c.query(w, r, func() (any, error) {
		if policy != nil {
			// A token sees the pools its node_pool rules name; the
			// simulator's policies (and the anonymous token) have none.
			return []*api.NodePool{}, nil
		}
		names := map[string]bool{"all": true, "default": true}
		for _, n := range c.nodes {
			names[n.pool] = true
		}
		var out []*api.NodePool
		for name := range names {
			p := &api.NodePool{Name: name, CreateIndex: 1, ModifyIndex: 1}
			switch name {
			case "all":
				p.Description = "Node pool with all nodes in the cluster."
			case "default":
				p.Description = "Default node pool."
			}
			if prefixOK(name, prefix) {
				out = append(out, p)
			}
		}
		sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
		return out, nil
	}, TableNodes)
}

func (c *Cluster) listDeployments(w http.ResponseWriter, r *http.Request) {
	prefix := r.URL.Query().Get("prefix")
	c.query(w, r, func() (any, error) {
		out := []*api.Deployment{}
		if _, other := otherNamespace(r); other {
			return out, nil
		}
		for _, j := range c.sortedJobs() {
			for _, d := range j.deploys {
				if prefixOK(d.id, prefix) {
					out = append(out, c.deployAPI(d))
				}
			}
		}
		sort.Slice(out, func(i, k int) bool { return out[i].CreateIndex > out[k].CreateIndex })
		return out, nil
	}, TableDeployments)
}

// evaluateJob forces an evaluation of a job, as `nomad job eval` does.
func (c *Cluster) evaluateJob(w http.ResponseWriter, r *http.Request) {
	c.write(w, func() (any, error) {
		j, err := c.lookupJob(r, r.PathValue("id"))
		if err != nil {
			return nil, err
		}
		ev := c.newEval(j, triggerRegister, "") // as Nomad's Job.Evaluate: TestFidelitySysbatchRunsOnce
		c.reconcile(j, ev)
		return &api.JobRegisterResponse{EvalID: ev.id, EvalCreateIndex: ev.createIdx, JobModifyIndex: j.jobModIdx}, nil
	})
}

// evaluateNode answers PUT /v1/node/:id/evaluate (`nomad node eval`,
// Nomad's Node.Evaluate): a node-update evaluation of the node for each
// job Nomad's server evaluates for it (nodeEvalJobs), all created at one
// index, at the node's modify index as it is. The answer is Nomad's whole
// NodeUpdateResponse: the evaluations, the index they were created at
// (Index, X-Nomad-Index; 0 only for a node with no allocation and no
// system job, see createNodeEvals), no
// NodeModifyIndex, and the server's information a heartbeat's answer
// carries (the leader, the servers, the node count, the node's
// eligibility). It has no EvalID, so nomad/api's ForceEvaluate returns
// "" (TestFidelityNodeEvaluate).
func (c *Cluster) evaluateNode(w http.ResponseWriter, r *http.Request) {
	c.writeAt(w, func() (any, uint64, error) {
		n, err := c.apiNode(r.PathValue("id"))
		if err != nil {
			return nil, 0, err
		}
		if n == nil {
			return nil, 0, rpcError("node not found")
		}
		out := &nodeUpdateReply{}
		out.EvalIDs, out.EvalCreateIndex = c.createNodeEvals(n, n.modifyIdx)
		out.Index = out.EvalCreateIndex
		out.LeaderRPCAddr, out.NumNodes = serverRPCAddr, int32(len(c.nodes))
		out.Servers = []nodeServerInfo{{RPCAdvertiseAddr: serverRPCAddr, Datacenter: c.serverDC()}}
		out.SchedulingEligibility = n.eligibility()
		if out.Index == 0 {
			return out, noIndex, nil
		}
		return out, out.Index, nil
	})
}

// ClockState is the answer of GET /v1/sim/clock.
type ClockState struct {
	Now      time.Time
	Start    time.Time
	Elapsed  Duration
	Tick     Duration
	Running  bool // tied to wall time; stepping is refused
	Scenario string
}

func (c *Cluster) simClock(w http.ResponseWriter, r *http.Request) {
	c.query(w, r, func() (any, error) {
		return ClockState{Now: c.now, Start: c.sc.Start, Elapsed: Duration(c.now.Sub(c.sc.Start)),
			Tick: Duration(c.sc.Tick), Running: c.running, Scenario: c.sc.Name}, nil
	})
}

func (c *Cluster) simStep(w http.ResponseWriter, r *http.Request) {
	d, err := time.ParseDuration(r.URL.Query().Get("d"))
	if err != nil || d < 0 {
		writeErr(w, badRequest("step: d must be a non-negative duration such as 1m"))
		return
	}
	c.write(w, func() (any, error) {
		if c.running {
			return nil, ErrClockRunning
		}
		c.advance(c.now.Add(d))
		return ClockState{Now: c.now, Start: c.sc.Start, Elapsed: Duration(c.now.Sub(c.sc.Start)),
			Tick: Duration(c.sc.Tick), Scenario: c.sc.Name}, nil
	})
}

func (c *Cluster) simTruth(w http.ResponseWriter, r *http.Request) {
	var since time.Time
	if s := r.URL.Query().Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			writeErr(w, badRequest("since must be an RFC 3339 time"))
			return
		}
		since = t
	}
	tr := c.TruthSince(since)
	body, err := json.Marshal(tr)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, c.Index(TableAllocs), body)
}

// AddNodesRequest is the body of POST /v1/sim/nodes.
type AddNodesRequest struct {
	Group string // a node group of the scenario
	Count int
}

// AddNodesResponse answers POST /v1/sim/nodes.
type AddNodesResponse struct {
	NodeIDs []string
	ReadyAt time.Time
}

func (c *Cluster) simAddNodes(w http.ResponseWriter, r *http.Request) {
	var req AddNodesRequest
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	c.write(w, func() (any, error) {
		ids, err := c.addNodes(req.Group, req.Count)
		if err != nil {
			return nil, err
		}
		return AddNodesResponse{NodeIDs: ids, ReadyAt: c.now.Add(c.sc.NodeBoot)}, nil
	})
}

func (c *Cluster) simFailAlloc(w http.ResponseWriter, r *http.Request) {
	c.write(w, func() (any, error) {
		if err := c.failAlloc(r.PathValue("id"), r.URL.Query().Get("reason")); err != nil {
			return nil, err
		}
		return c.allocStub(c.allocByID[r.PathValue("id")], false), nil
	})
}

func (c *Cluster) simTruthSummary(w http.ResponseWriter, r *http.Request) {
	body, err := json.Marshal(c.Truth().Summarize())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, c.Index(TableAllocs), body)
}

func (c *Cluster) simGetFaults(w http.ResponseWriter, r *http.Request) {
	c.query(w, r, func() (any, error) { return c.faults.clone(), nil })
}

func (c *Cluster) simSetFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	// Strict, unlike Nomad's endpoints: a misspelt fault would otherwise
	// inject nothing.
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		writeErr(w, badRequest("faults: %v", err))
		return
	}
	c.write(w, func() (any, error) {
		if err := c.setFaults(f); err != nil {
			return nil, err
		}
		return c.faults.clone(), nil
	})
}
