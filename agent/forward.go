package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// forwardedHeader marks a request one server passed on to another, naming
// the server that passed it; a request carrying it is never passed on
// again.
const forwardedHeader = "X-Foreshape-Forwarded-By"

// forwardWrites passes API requests that change the cluster (every method
// but GET and HEAD under /v1/) to the leader when this server does not
// lead, and relays the answer. Reads stay local: every server holds the
// replicated state.
func (a *Agent) forwardWrites(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || !strings.HasPrefix(r.URL.Path, "/v1/") || a.node.IsLeader() {
			next.ServeHTTP(w, r)
			return
		}
		if by := r.Header.Get(forwardedHeader); by != "" {
			writeAPIError(w, http.StatusServiceUnavailable, fmt.Sprintf("%s forwarded this request here, but this server does not lead either (leadership is moving); retry", by))
			return
		}
		addr, err := a.leaderHTTP(r.Context())
		if err != nil {
			writeAPIError(w, http.StatusServiceUnavailable, "this server does not lead and cannot forward the request: "+err.Error())
			return
		}
		proxyTo(a.peers, addr, a.name).ServeHTTP(w, r)
	})
}

// proxyTo returns a reverse proxy to the agent API at addr that marks
// what it forwards as forwarded by name.
func proxyTo(peers *peerClient, addr, name string) http.Handler {
	target, _ := url.Parse(peers.url(addr))
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(forwardedHeader, name)
		},
		Transport: peers.http.Transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeAPIError(w, http.StatusBadGateway, fmt.Sprintf("forwarding to the leader at %s: %v", addr, err))
		},
	}
}

func writeAPIError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(api.Error{Error: msg})
}

// leaderView is the leader's last published cycle as a follower fetched
// it.
type leaderView struct {
	forecasts []api.Forecast
	hotspots  []api.Hotspot
	anomalies []api.Anomaly
	fetched   time.Time
	err       error
}

// leaderCache keeps the leader's view for a follower, fetched at most once
// per cycle interval.
type leaderCache struct {
	mu   sync.Mutex
	view *leaderView
}

// fromLeader returns the leader's last cycle when this server does not
// lead (ok), fetching it at most once a cycle; a fetch that fails is
// logged and answers empty.
func (a *Agent) fromLeader(ctx context.Context) (*leaderView, bool) {
	if a.node == nil {
		return nil, false
	}
	if _, leading := a.node.LeaderContext(); leading || a.node.IsLeader() {
		return nil, false
	}
	c := &a.leaderCache
	c.mu.Lock()
	defer c.mu.Unlock()
	ttl := min(max(a.interval(), time.Second), 30*time.Second)
	if v := c.view; v != nil && time.Since(v.fetched) < ttl {
		return v, true
	}
	v := &leaderView{fetched: time.Now()}
	v.err = a.fetchLeaderView(ctx, v)
	if v.err != nil {
		a.log.Warn("cannot read the leader's forecasts; answering none", logKeyError, v.err)
		v.forecasts, v.hotspots, v.anomalies = nil, nil, nil
	}
	c.view = v
	return v, true
}

func (a *Agent) fetchLeaderView(ctx context.Context, v *leaderView) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addr, err := a.leaderHTTP(ctx)
	if err != nil {
		return err
	}
	client := &api.Client{Address: a.peers.url(addr), Token: a.peerToken(), HTTP: a.peers.http}
	fs, err := client.ForecastsWithHistory(ctx)
	if err != nil {
		return err
	}
	hs, err := client.Hotspots(ctx)
	if err != nil {
		return err
	}
	as, err := client.Anomalies(ctx)
	if err != nil {
		return err
	}
	v.forecasts, v.hotspots, v.anomalies = fs, hs, as
	return nil
}

// peerToken is the token this agent presents to other agents' APIs: the
// first of its own acl.token_file (every agent of a cluster shares them).
func (a *Agent) peerToken() string {
	if toks := a.currentTokens(); len(toks) > 0 {
		return toks[0]
	}
	return ""
}
