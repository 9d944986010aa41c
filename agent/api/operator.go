package api

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// OperatorBackend serves the operator endpoints: the Raft configuration
// and removing a server from it.
type OperatorBackend interface {
	// RaftConfiguration returns every server of the configuration.
	RaftConfiguration(ctx context.Context) (RaftConfiguration, error)
	// RemovePeer removes the server with this ID (or, when id is empty,
	// at this Raft address) from the configuration; on the leader only.
	// It answers an error wrapping ErrNotFound when no server matches and
	// ErrInvalid when the request names none or names the leader.
	RemovePeer(ctx context.Context, id, address string) error
}

// RaftConfiguration is the answer of GET /v1/operator/raft/configuration.
type RaftConfiguration struct {
	// Index is the Raft index of the configuration.
	Index   uint64       `json:"index"`
	Servers []RaftServer `json:"servers"`
	// AnsweredBy names the server that answered; health comes only from
	// the leader.
	AnsweredBy string `json:"answered_by"`
}

// RaftServer is one server of the Raft configuration.
type RaftServer struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Address     string `json:"address"`
	HTTPAddress string `json:"http_address,omitempty"`
	Suffrage    string `json:"suffrage"` // "voter" or "nonvoter"
	Leader      bool   `json:"leader"`
	Version     string `json:"version,omitempty"`
	// Healthy and LastContact are the leader's view: whether the server
	// answered its last health check and said in it that it can write to
	// its data_dir (false with DataDirError set), and when it last
	// answered.
	Healthy     *bool      `json:"healthy,omitempty"`
	LastContact *time.Time `json:"last_contact,omitempty"`
	// LastContactAgeS is how long before the answer LastContact was, in
	// seconds, measured by the leader that answered: a client whose clock
	// is not the leader's prints this, not its own clock's difference
	// from LastContact. Absent from an agent older than the field.
	LastContactAgeS *float64 `json:"last_contact_age_s,omitempty"`
	// Halted is the leader's view too: set when the server's state stopped
	// applying the log at an entry or snapshot section its release does
	// not know (it is older than the cluster's log), saying where.
	Halted string `json:"halted,omitempty"`
	// DataDirError is the leader's view too, from the server's last
	// answer: set while the server cannot write to its data_dir (a full,
	// read-only or failing disk), saying which file, why and what it stops
	// doing; Healthy is then false. A server of a release from before the
	// field never sets it.
	DataDirError string `json:"data_dir_error,omitempty"`
	// Superseded is set when the server's cluster was recovered from a
	// lost quorum as another (it no longer leads or votes): from the
	// leader's view, or the answering server's of itself.
	Superseded string `json:"superseded,omitempty"`
}

func (s *Server) routeOperator() {
	s.route("GET /v1/operator/raft/configuration", s.operator(s.raftConfiguration))
	s.route("DELETE /v1/operator/raft/peer", s.operator(s.removePeer), "id", "address")
	s.routeSnapshot()
}

func (s *Server) operator(next func(http.ResponseWriter, *http.Request, OperatorBackend)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Operator == nil {
			writeError(w, http.StatusServiceUnavailable, "this agent is not a server")
			return
		}
		next(w, r, s.opts.Operator)
	}
}

func (s *Server) raftConfiguration(w http.ResponseWriter, r *http.Request, b OperatorBackend) {
	c, err := b.RaftConfiguration(r.Context())
	if err != nil {
		s.backendError(w, r, err)
		return
	}
	c.Servers = nonNil(c.Servers)
	s.writeJSON(w, r, c)
}

// removePeer answers DELETE /v1/operator/raft/peer?id=ID (or ?address=).
func (s *Server) removePeer(w http.ResponseWriter, r *http.Request, b OperatorBackend) {
	id, addr := r.URL.Query().Get("id"), r.URL.Query().Get("address")
	if (id == "") == (addr == "") {
		writeError(w, http.StatusBadRequest, "name the server to remove with exactly one of ?id= and ?address=")
		return
	}
	if err := b.RemovePeer(r.Context(), id, addr); err != nil {
		s.backendError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// RaftConfiguration calls GET /v1/operator/raft/configuration.
func (c *Client) RaftConfiguration(ctx context.Context) (RaftConfiguration, error) {
	var rc RaftConfiguration
	return rc, c.get(ctx, "/v1/operator/raft/configuration", nil, &rc)
}

// RemovePeer calls DELETE /v1/operator/raft/peer with the server's ID, or
// its Raft address when id is empty.
func (c *Client) RemovePeer(ctx context.Context, id, address string) error {
	q := url.Values{}
	if id != "" {
		q.Set("id", id)
	} else {
		q.Set("address", address)
	}
	_, err := c.do(ctx, http.MethodDelete, "/v1/operator/raft/peer", q, nil, nil)
	return err
}
