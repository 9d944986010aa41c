package state

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Membership: what the leader knows of the cluster's agents, replicated so
// that any server can answer for it (its status, the leader's HTTP address
// for forwarding). Servers are described by the leader's health checks;
// client agents by their reports. Commands 64–79; payloads are JSON like
// the act commands'.
const (
	TypePutServer    CommandType = 64
	TypeRemoveServer CommandType = 65
	TypePutClient    CommandType = 66
	TypeRemoveClient CommandType = 67
)

var membershipTypeNames = map[CommandType]string{
	TypePutServer:    "put_server",
	TypeRemoveServer: "remove_server",
	TypePutClient:    "put_client",
	TypeRemoveClient: "remove_client",
}

// sectionMembership is the snapshot section of servers and client agents:
// one JSON record each ({"server": …} or {"client": …}), servers by ID then
// clients by node ID. It is skippable (nothing else depends on it) and
// written only when not empty.
const sectionMembership = "membership"

// ServerMeta describes one server as the leader last heard from it.
type ServerMeta struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	RaftAddress string `json:"raft_address"`
	HTTPAddress string `json:"http_address"`
	Version     string `json:"version"`
}

// ClientAgent is a client agent reporting its Nomad node's stats.
type ClientAgent struct {
	// NodeID and NodeName are the Nomad node it reports on; NodeID is its
	// key.
	NodeID   string `json:"node_id"`
	NodeName string `json:"node_name"`
	// Name is the agent's own name, Address where it reported from.
	Name    string `json:"name"`
	Address string `json:"address"`
	Version string `json:"version"`
	// Since is its first report, LastSeen a recent one (the leader
	// refreshes it every few minutes, not on every report).
	Since    time.Time `json:"since"`
	LastSeen time.Time `json:"last_seen"`
}

// PutServer adds or replaces a server's description.
type PutServer struct {
	Server ServerMeta `json:"server"`
}

// RemoveServer forgets a server that left the Raft configuration.
type RemoveServer struct {
	ID string `json:"id"`
}

// PutClient adds or replaces a client agent.
type PutClient struct {
	Client ClientAgent `json:"client"`
}

// RemoveClient forgets a client agent that stopped reporting.
type RemoveClient struct {
	NodeID string    `json:"node_id"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

func (PutServer) Type() CommandType    { return TypePutServer }
func (RemoveServer) Type() CommandType { return TypeRemoveServer }
func (PutClient) Type() CommandType    { return TypePutClient }
func (RemoveClient) Type() CommandType { return TypeRemoveClient }

func (c PutServer) encode(e *encoder)    { encodeJSON(e, c) }
func (c RemoveServer) encode(e *encoder) { encodeJSON(e, c) }
func (c PutClient) encode(e *encoder)    { encodeJSON(e, c) }
func (c RemoveClient) encode(e *encoder) { encodeJSON(e, c) }

// decodeMembership decodes a membership command, or reports that t is not
// one.
func decodeMembership(t CommandType, d *decoder) (Command, bool) {
	switch t {
	case TypePutServer:
		return decodeJSON[PutServer](d), true
	case TypeRemoveServer:
		return decodeJSON[RemoveServer](d), true
	case TypePutClient:
		return decodeJSON[PutClient](d), true
	case TypeRemoveClient:
		return decodeJSON[RemoveClient](d), true
	}
	return nil, false
}

// membership is the sub-store; the FSM's lock guards it.
type membership struct {
	servers map[string]ServerMeta
	clients map[string]ClientAgent
}

func newMembership() *membership {
	return &membership{servers: map[string]ServerMeta{}, clients: map[string]ClientAgent{}}
}

func (m *membership) clone() *membership {
	return &membership{servers: maps.Clone(m.servers), clients: maps.Clone(m.clients)}
}

// apply applies a membership command; ok is false when cmd is not one.
// Applied is 1 when the state changed.
func (m *membership) apply(cmd Command, index uint64) (res Result, err error, ok bool) {
	res = Result{Index: index, Type: cmd.Type()}
	changed := false
	switch c := cmd.(type) {
	case PutServer:
		if c.Server.ID == "" {
			return res, fmt.Errorf("%w: put_server without an id", ErrMalformedPayload), true
		}
		changed = m.servers[c.Server.ID] != c.Server
		m.servers[c.Server.ID] = c.Server
		res.ID = c.Server.ID
	case RemoveServer:
		_, changed = m.servers[c.ID]
		delete(m.servers, c.ID)
		res.ID = c.ID
	case PutClient:
		if c.Client.NodeID == "" {
			return res, fmt.Errorf("%w: put_client without a node id", ErrMalformedPayload), true
		}
		changed = m.clients[c.Client.NodeID] != c.Client
		m.clients[c.Client.NodeID] = c.Client
		res.ID = c.Client.NodeID
	case RemoveClient:
		_, changed = m.clients[c.NodeID]
		delete(m.clients, c.NodeID)
		res.ID = c.NodeID
	default:
		return res, nil, false
	}
	if changed {
		res.Applied = 1
	}
	return res, nil, true
}

type membershipRecord struct {
	Server *ServerMeta  `json:"server,omitempty"`
	Client *ClientAgent `json:"client,omitempty"`
}

// records lists the section's records in their fixed order.
func (m *membership) records() []any {
	var out []any
	for _, id := range slices.Sorted(maps.Keys(m.servers)) {
		s := m.servers[id]
		out = append(out, membershipRecord{Server: &s})
	}
	for _, id := range slices.Sorted(maps.Keys(m.clients)) {
		c := m.clients[id]
		out = append(out, membershipRecord{Client: &c})
	}
	return out
}

// writeMembership writes the section when there is anything to write.
func writeMembership(fw *frameWriter, m *membership) {
	if m == nil {
		return
	}
	if recs := m.records(); len(recs) > 0 {
		writeAct(fw, []actSection{{name: sectionMembership, flags: flagSkippable, records: recs}})
	}
}

// restoreMembership reads the section's records into m.
func restoreMembership(fr *frameReader, m *membership, records uint64) error {
	for i := range records {
		d, err := fr.frame()
		if err != nil {
			return err
		}
		raw := d.str()
		if err := d.done(); err != nil {
			return fmt.Errorf("%w: membership record %d: %w", ErrCorruptSnapshot, i, err)
		}
		var r membershipRecord
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return fmt.Errorf("%w: membership record %d: %w", ErrCorruptSnapshot, i, err)
		}
		switch {
		case r.Server != nil && r.Server.ID != "":
			m.servers[r.Server.ID] = *r.Server
		case r.Client != nil && r.Client.NodeID != "":
			m.clients[r.Client.NodeID] = *r.Client
		default:
			return fmt.Errorf("%w: membership record %d holds neither a server nor a client", ErrCorruptSnapshot, i)
		}
	}
	return nil
}

// Servers returns every server's description, by ID.
func (f *FSM) Servers() []ServerMeta {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := slices.Collect(maps.Values(f.members.servers))
	slices.SortFunc(out, func(a, b ServerMeta) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Clients returns every client agent, by node ID.
func (f *FSM) Clients() []ClientAgent {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := slices.Collect(maps.Values(f.members.clients))
	slices.SortFunc(out, func(a, b ClientAgent) int { return strings.Compare(a.NodeID, b.NodeID) })
	return out
}
