package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/config"
)

// This file is the server's part in the cluster: its Raft node's
// configuration (identity, addresses, TLS, the servers to join), the
// replication of what the leader learns of servers and client agents, and
// the cluster status the API shows.

// raftAddrs are the Raft port's bind and advertised addresses.
func raftAddrs(cfg *config.Config) (bind, adv string) {
	port := strconv.Itoa(cfg.Server.RaftPort)
	bind = net.JoinHostPort(cfg.BindAddr, port)
	if cfg.AdvertiseAddr != "" {
		adv = net.JoinHostPort(cfg.AdvertiseAddr, port)
	}
	return bind, adv
}

// httpAdvertise is the HOST:PORT other agents and Consul reach the HTTP
// API at, given the address it listens on: advertise_addr when the
// listener takes every interface, else the listener's own address.
func httpAdvertise(cfg *config.Config, listen net.Addr) string {
	host, port, err := net.SplitHostPort(listen.String())
	if err != nil {
		return listen.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		switch {
		case cfg.AdvertiseAddr != "":
			host = cfg.AdvertiseAddr
		case net.ParseIP(cfg.BindAddr) != nil && !net.ParseIP(cfg.BindAddr).IsUnspecified():
			host = cfg.BindAddr
		}
	}
	return net.JoinHostPort(host, port)
}

// joinTargets splits server.retry_join into addresses (HOST:PORT, the
// port defaulting to raft_port) and a lookup of the provider entries.
func joinTargets(cfg *config.Config, consul *consulapi.Client) ([]string, func(context.Context) ([]string, error), error) {
	var static []string
	var lookups []func(context.Context) ([]string, error)
	for _, e := range cfg.Server.RetryJoin {
		if strings.Contains(e, "provider=") {
			p, err := config.ParseJoinProvider(e)
			if err != nil {
				return nil, nil, fmt.Errorf("agent: server.retry_join: %w", err)
			}
			service := p.Service
			if service == "" {
				service = cfg.Consul.ServiceName
			}
			if consul == nil {
				return nil, nil, fmt.Errorf("agent: server.retry_join: %q needs a Consul client", e)
			}
			lookups = append(lookups, consulDiscover(consul, service))
			continue
		}
		if _, _, err := net.SplitHostPort(e); err == nil {
			static = append(static, e)
		} else {
			static = append(static, net.JoinHostPort(strings.Trim(e, "[]"), strconv.Itoa(cfg.Server.RaftPort)))
		}
	}
	if len(lookups) == 0 {
		return static, nil, nil
	}
	return static, func(ctx context.Context) ([]string, error) {
		var out []string
		var errs []error
		for _, l := range lookups {
			addrs, err := l(ctx)
			out = append(out, addrs...)
			if err != nil {
				errs = append(errs, err)
			}
		}
		return out, errors.Join(errs...)
	}, nil
}

// startNode opens this server's Raft node.
func (a *Agent) startNode(cfg *config.Config, start *preflight.Start) (*cluster.Node, error) {
	id, name := start.Name, start.Name
	if !cfg.DevMode {
		var err error
		if id, err = cluster.LoadOrCreateNodeID(cfg.DataDir); err != nil {
			return nil, dataDirError(cfg, err)
		}
	}
	static, discover, err := joinTargets(cfg, start.Consul)
	if err != nil {
		return nil, err
	}
	tlsc := start.ClusterTLS()
	a.peers = newPeerClient(cfg, tlsc)
	bind, adv := raftAddrs(cfg)
	s := cfg.Server
	cc := cluster.Config{
		NodeID: id, Name: name, Version: a.opts.Version,
		StateProtocol: state.Protocol, CommandProtocol: state.CommandProtocol,
		BindAddr: bind, AdvertiseAddr: adv, DataDir: cfg.DataDir, InMemory: cfg.DevMode,
		Bootstrap: s.Alone(), RetryJoin: static, Discover: discover,
		Nonvoter: !s.Voter, Voters: s.EffectiveVoters(), PromoteAfter: s.PromoteAfter, RemoveAfter: s.RemoveAfter,
		OnServers: a.reconcileMembers, TLS: tlsc,
		SnapshotThreshold: uint64(s.RaftSnapshotThreshold), SnapshotInterval: s.RaftSnapshotInterval,
		TrailingLogs: uint64(s.RaftTrailingLogs),
	}
	if !s.Alone() {
		cc.BootstrapExpect = s.BootstrapExpect
	}
	if cfg.DevMode {
		cc.BindAddr, cc.AdvertiseAddr = "", "" // in-process transport
		a.inMemory = true
	}
	node, err := cluster.New(cc, a.fsm, a.log.Named("cluster"))
	var pe *fs.PathError
	switch {
	case err != nil && !cfg.DevMode && errors.As(err, &pe) && inDir(cfg.DataDir, pe.Path):
		// raft.db or snapshots/ cannot be opened: a data_dir that
		// changed since preflight.Check (a disk that filled, a file
		// put in place of one of them).
		return nil, dataDirError(cfg, fmt.Errorf("raft: %w", err))
	case err != nil:
		return nil, fmt.Errorf("agent: raft: %w", err)
	}
	if !cfg.DevMode {
		// cluster.New holds raft.db's lock: no restore runs here now.
		removeRestoreLeftovers(cfg.DataDir, a.log)
	}
	node.HandleOnLeader(opReport, a.handleReport)
	return node, nil
}

// InMemoryRaftAddress is what the API shows as a server's Raft address
// when the transport is in-process (dev mode).
const InMemoryRaftAddress = cluster.InMemoryAddress

// raftAddress is how the API shows a Raft address: as it is, or
// InMemoryRaftAddress for an in-process transport's.
func (a *Agent) raftAddress(addr string) string {
	if a.inMemory && addr != "" {
		return InMemoryRaftAddress
	}
	return addr
}

// role is this server's role for Consul's tags.
func (a *Agent) role() string {
	if a.node.IsLeader() {
		return roleLeader
	}
	return roleFollower
}

// reconcileMembers runs on the leader after each health round of the
// servers: it replicates what changed about them, and keeps the client
// agents' list current.
func (a *Agent) reconcileMembers(lctx context.Context, servers []cluster.ServerHealth) {
	have := map[string]state.ServerMeta{}
	for _, s := range a.fsm.Servers() {
		have[s.ID] = s
	}
	inConf := map[string]bool{}
	var cmds []state.Command
	for _, h := range servers {
		inConf[h.ID] = true
		if h.Info == nil {
			continue
		}
		m := state.ServerMeta{ID: h.ID, Name: h.Info.Name, RaftAddress: h.Address, HTTPAddress: h.Info.HTTPAddress, Version: h.Info.Version}
		if have[h.ID] != m {
			cmds = append(cmds, state.PutServer{Server: m})
		}
	}
	for id := range have {
		if !inConf[id] {
			cmds = append(cmds, state.RemoveServer{ID: id})
		}
	}
	cmds = append(cmds, a.reports.membership(lctx, a.fsm.Clients(), time.Now(), a.interval())...)
	apply := a.applyMember
	if apply == nil {
		apply = applier{a.node}.Apply
	}
	for _, c := range cmds {
		if _, err := apply(lctx, c); err != nil {
			// The round's other updates wait for the next round, a
			// second later, as this one does.
			if lctx.Err() == nil {
				a.memberFails.Fail(a.log, time.Now(), "membership update failed; trying again each round", err, "command", c.Type().String())
			}
			return
		}
	}
	a.memberFails.OK(a.log, time.Now(), "membership updates work again")
}

// serverMeta returns what this server knows of the servers' names, HTTP
// addresses and versions, by ID, and on the leader their health. The
// replicated membership comes first; a server it does not list yet (the
// leader replicates it after a health round, and a server that has not
// applied the log yet has none) is named by the leader's last check of it
// or, for this server itself, by its own configuration, so a new server's
// status never shows itself or, on the leader, a member it has heard from
// without a name.
func (a *Agent) serverMeta() (map[string]state.ServerMeta, map[string]cluster.ServerHealth) {
	meta := map[string]state.ServerMeta{}
	health := map[string]cluster.ServerHealth{}
	for _, h := range a.node.Health() {
		health[h.ID] = h
		if h.Info != nil {
			meta[h.ID] = state.ServerMeta{ID: h.ID, Name: h.Info.Name, RaftAddress: h.Address, HTTPAddress: h.Info.HTTPAddress, Version: h.Info.Version}
		}
	}
	self := a.node.Info()
	if _, ok := meta[self.ID]; !ok {
		meta[self.ID] = state.ServerMeta{ID: self.ID, Name: self.Name, RaftAddress: self.RaftAddress, HTTPAddress: self.HTTPAddress, Version: self.Version}
	}
	for _, s := range a.fsm.Servers() {
		meta[s.ID] = s
	}
	return meta, health
}

// clusterStatus adds the cluster's members to a status answer: every
// peer's name, HTTP address and version as the leader last heard them (and
// its health, on the leader), and the client agents.
func (a *Agent) clusterStatus(peers []api.Peer, now time.Time) ([]api.Peer, []api.ClientAgent) {
	meta, health := a.serverMeta()
	for i := range peers {
		if m, ok := meta[peers[i].ID]; ok {
			peers[i].Name, peers[i].HTTPAddress, peers[i].Version = m.Name, m.HTTPAddress, m.Version
		}
		if h, ok := health[peers[i].ID]; ok {
			peerHealth(&peers[i], h)
		}
	}
	var clients []api.ClientAgent
	for _, c := range a.fsm.Clients() {
		clients = append(clients, api.ClientAgent{
			NodeID: c.NodeID, NodeName: c.NodeName, Name: c.Name, Address: c.Address, Version: c.Version,
			Since: c.Since, LastSeen: c.LastSeen, Reporting: now.Sub(c.LastSeen) <= clientRefresh+clientGoneAfter(a.interval()),
		})
	}
	return peers, clients
}

// leaderHTTP returns the leader's HTTP API address: from the replicated
// server list, or else by asking the leader.
// errNoLeaderKnown is leaderHTTP's error when this server knows no leader.
var errNoLeaderKnown = errors.New("no leader is known")

func (a *Agent) leaderHTTP(ctx context.Context) (string, error) {
	addr, id := a.node.LeaderAddress()
	if id == "" {
		return "", errNoLeaderKnown
	}
	for _, s := range a.fsm.Servers() {
		if s.ID == id && s.HTTPAddress != "" {
			return s.HTTPAddress, nil
		}
	}
	var info cluster.ServerInfo
	if err := a.peers.rpc.Call(ctx, addr, cluster.OpInfo, nil, &info); err != nil {
		return "", fmt.Errorf("the leader's HTTP address: %w", err)
	}
	if info.HTTPAddress == "" {
		return "", fmt.Errorf("the leader at %s has no HTTP address yet", addr)
	}
	return info.HTTPAddress, nil
}

// peerClient is how an agent calls other agents: cluster calls on their
// Raft ports, and their HTTP APIs, both with the cluster's mutual TLS.
type peerClient struct {
	rpc    *cluster.RPCClient
	http   *http.Client
	scheme string
}

func newPeerClient(cfg *config.Config, t *cluster.TLS) *peerClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	scheme := "http"
	if cfg.TLS.Enabled() {
		scheme = "https"
		if t != nil {
			tr.TLSClientConfig = t.ClientConfig()
		}
	}
	return &peerClient{
		rpc:    &cluster.RPCClient{TLS: t},
		http:   &http.Client{Transport: tr, Timeout: 30 * time.Second},
		scheme: scheme,
	}
}

// url is the base URL of an agent's HTTP API at addr.
func (p *peerClient) url(addr string) string { return p.scheme + "://" + addr }

// requireClientCert refuses API requests that came without a verified
// client certificate (tls.verify_incoming), except /v1/health and
// /v1/ready, which Consul's and Nomad's health checks call without one.
func requireClientCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/health" && r.URL.Path != "/v1/ready" && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
			writeAPIError(w, http.StatusForbidden, api.DeniedNoClientCert)
			return
		}
		next.ServeHTTP(w, r)
	})
}
