package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Cluster RPCs travel on the Raft port (see transport.go): one JSON request
// and one JSON response per connection, under mutual TLS when configured.
// They carry little: server info and joins, and client agents' reports,
// each well under a megabyte.

// Ops every server serves.
const (
	// OpInfo answers a ServerInfo: who this server is and what it knows of
	// the cluster. Bootstrap discovery, joins and the leader's health checks
	// use it.
	OpInfo = "info"
	// OpJoin asks the leader to add the server in the request (a
	// ServerInfo) to the Raft configuration; followers forward it.
	OpJoin = "join"
)

// rpcTimeout bounds one call unless the caller's context is shorter.
const rpcTimeout = 10 * time.Second

// maxRPCSize bounds a request or response.
const maxRPCSize = 16 << 20

type rpcRequest struct {
	Op string `json:"op"`
	// Forwarded is set by a follower passing a leader-only call on, so that
	// a request never travels more than one hop.
	Forwarded bool            `json:"forwarded,omitempty"`
	Body      json.RawMessage `json:"body,omitempty"`
}

// Response codes for errors callers branch on.
const (
	codeNotLeader = "not_leader"
	codeUnknownOp = "unknown_op"
)

type rpcResponse struct {
	Error         string          `json:"error,omitempty"`
	Code          string          `json:"code,omitempty"`
	LeaderID      string          `json:"leader_id,omitempty"`
	LeaderAddress string          `json:"leader_address,omitempty"`
	Body          json.RawMessage `json:"body,omitempty"`
}

// ErrUnknownOp is returned by Call when the server does not serve the op.
var ErrUnknownOp = errors.New("cluster: the server does not serve this call")

// Handler serves one cluster RPC: it decodes body and returns the value to
// encode as the answer, or an error. It runs on the server's connection
// goroutine; ctx ends when the call times out or the node closes.
type Handler func(ctx context.Context, body json.RawMessage) (any, error)

type handler struct {
	fn         Handler
	leaderOnly bool
}

// RPCClient calls cluster RPCs on servers' Raft ports. Servers use it for
// joins, health checks and forwarding; client agents use it alone, without
// a Node.
type RPCClient struct {
	// TLS, when set, is the mutual TLS every server requires.
	TLS *TLS
	// Timeout bounds each call unless ctx is shorter; zero means 10s.
	Timeout time.Duration
}

// Call sends op with req (JSON-encoded) to the server at address and
// decodes its answer into resp (which may be nil). A server that refuses
// because it does not lead answers a *NotLeaderError.
func (c *RPCClient) Call(ctx context.Context, address, op string, req, resp any) error {
	return c.call(ctx, address, rpcRequest{Op: op}, req, resp)
}

func (c *RPCClient) call(ctx context.Context, address string, r rpcRequest, req, resp any) error {
	if req != nil {
		b, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("cluster: rpc %s: encode: %w", r.Op, err)
		}
		r.Body = b
	}
	raw, err := c.roundTrip(ctx, address, r)
	if err != nil {
		return err
	}
	if resp != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, resp); err != nil {
			return fmt.Errorf("cluster: rpc %s to %s: decode: %w", r.Op, address, err)
		}
	}
	return nil
}

// roundTrip sends one request and returns the answer's body, or the error
// it names.
func (c *RPCClient) roundTrip(ctx context.Context, address string, r rpcRequest) (json.RawMessage, error) {
	resp, err := c.exchange(ctx, address, r)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.Code == codeNotLeader:
		return nil, &NotLeaderError{LeaderID: resp.LeaderID, LeaderAddress: resp.LeaderAddress}
	case resp.Code == codeUnknownOp:
		return nil, fmt.Errorf("%w: %s (%s)", ErrUnknownOp, r.Op, address)
	case resp.Error != "":
		return nil, fmt.Errorf("cluster: rpc %s to %s: %s", r.Op, address, resp.Error)
	}
	return resp.Body, nil
}

// exchange sends one request and returns the answer as the server gave
// it; the error is the exchange's own (no connection, no answer).
func (c *RPCClient) exchange(ctx context.Context, address string, r rpcRequest) (rpcResponse, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = rpcTimeout
	}
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := ctx.Err(); err != nil {
		return rpcResponse{}, fmt.Errorf("cluster: rpc %s to %s: %w", r.Op, address, err)
	}
	conn, err := dial(address, connRPC, c.TLS, time.Until(deadline))
	if err != nil {
		return rpcResponse{}, fmt.Errorf("cluster: rpc %s to %s: %w", r.Op, address, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	_ = conn.SetDeadline(deadline)
	if err := json.NewEncoder(conn).Encode(r); err != nil {
		return rpcResponse{}, fmt.Errorf("cluster: rpc %s to %s: send: %w", r.Op, address, ctxErr(ctx, err))
	}
	var resp rpcResponse
	if err := json.NewDecoder(io.LimitReader(conn, maxRPCSize)).Decode(&resp); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			// Something answered that does not speak foreshape's cluster
			// calls: an HTTP server (the agent's HTTP API port given for
			// its Raft port), another service.
			return rpcResponse{}, fmt.Errorf("cluster: rpc %s to %s: the answer is not a foreshape server's (is %s the Raft port, server.raft_port?): %w", r.Op, address, address, err)
		}
		return rpcResponse{}, fmt.Errorf("cluster: rpc %s to %s: receive: %w", r.Op, address, ctxErr(ctx, err))
	}
	return resp, nil
}

// ctxErr prefers the context's error, which says why a read was cut short.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// rpcServer dispatches the cluster RPCs a Node serves.
type rpcServer struct {
	node *Node

	mu       sync.RWMutex
	handlers map[string]handler
}

// Handle registers fn for op on every server. It replaces an earlier
// handler of the same op.
func (n *Node) Handle(op string, fn Handler) { n.rpc.set(op, handler{fn: fn}) }

// HandleOnLeader registers fn for op on the leader: a follower that
// receives op passes it on to the leader unchanged and relays the answer,
// so callers may reach any server.
func (n *Node) HandleOnLeader(op string, fn Handler) {
	n.rpc.set(op, handler{fn: fn, leaderOnly: true})
}

func (s *rpcServer) set(op string, h handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[op] = h
}

// serve answers the one request on c.
func (s *rpcServer) serve(c net.Conn) {
	defer c.Close()
	n := s.node
	_ = c.SetDeadline(time.Now().Add(rpcTimeout + time.Second))
	var req rpcRequest
	if err := json.NewDecoder(io.LimitReader(c, maxRPCSize)).Decode(&req); err != nil {
		n.logger.Debug("malformed cluster call", "remote_addr", c.RemoteAddr().String(), logKeyError, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	stop := context.AfterFunc(n.closing, cancel)
	defer stop()
	resp := s.dispatch(ctx, req)
	_ = json.NewEncoder(c).Encode(resp)
}

func (s *rpcServer) dispatch(ctx context.Context, req rpcRequest) rpcResponse {
	n := s.node
	s.mu.RLock()
	h, ok := s.handlers[req.Op]
	s.mu.RUnlock()
	if !ok {
		return rpcResponse{Code: codeUnknownOp, Error: "unknown call " + req.Op}
	}
	if h.leaderOnly && !n.IsLeader() {
		addr, id := n.raft.LeaderWithID()
		if req.Forwarded || addr == "" {
			return rpcResponse{Code: codeNotLeader, Error: ErrNotLeader.Error(), LeaderID: string(id), LeaderAddress: string(addr)}
		}
		// The leader's answer goes back as it is: a refusal reads as the
		// leader gave it, not wrapped in this hop's address.
		req.Forwarded = true
		resp, err := n.client.exchange(ctx, string(addr), req)
		if err != nil {
			return errorResponse(err)
		}
		return resp
	}
	v, err := h.fn(ctx, req.Body)
	if err != nil {
		return errorResponse(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return rpcResponse{Error: "encode answer: " + err.Error()}
	}
	return rpcResponse{Body: b}
}

func errorResponse(err error) rpcResponse {
	var nl *NotLeaderError
	if errors.As(err, &nl) {
		return rpcResponse{Code: codeNotLeader, Error: err.Error(), LeaderID: nl.LeaderID, LeaderAddress: nl.LeaderAddress}
	}
	return rpcResponse{Error: err.Error()}
}
