package cluster

import (
	"errors"
	"fmt"
	"strings"
)

// Rolling upgrades. For a while servers of two releases share one log, so
// two rules keep an older server from holding state that is not the
// cluster's:
//
//   - Every server advertises the state protocol its build speaks
//     (ServerInfo.StateProtocol). The leader writes a command of a later
//     protocol only once every server of the configuration has advertised
//     it, or a later one, in this term (Apply, Config.CommandProtocol);
//     until then Apply refuses it with an error naming the server to
//     upgrade. Each server's answer comes from the leader's health checks
//     (reconcile.go), so a server that has not answered this term holds a
//     newer command back too.
//   - A state machine that meets an entry or snapshot section its build does
//     not know anyway (a server added from an older release later, a
//     downgrade) stops applying there rather than skip it: the state
//     machine says so (Halted; agent/state's FSM does). The node then logs
//     it once at ERROR, answers it in Ready, Status and OpInfo, and does not
//     lead: a halted server that wins an election hands leadership over and
//     never publishes a term, so no leader work runs on its state.

// halter is a state machine that can stop applying the log (agent/state's
// FSM).
type halter interface{ Halted() error }

// halted returns why the state machine stopped applying the log, or nil.
func (n *Node) halted() error {
	if h, ok := n.fsm.(halter); ok {
		return h.Halted()
	}
	return nil
}

// noteHalt logs, once per halt, that the state machine stopped.
func (n *Node) noteHalt() {
	err := n.halted()
	if err == nil {
		if n.haltLogged.Load() != nil {
			n.haltLogged.Store(nil)
		}
		return
	}
	msg := err.Error()
	if old := n.haltLogged.Swap(&msg); old == nil || *old != msg {
		n.logger.Error("this server's state machine stopped applying the log: its build is older than the cluster's; it will not lead and is not ready until it runs the release the other servers run",
			logKeyError, msg)
	}
}

// ErrProtocol is wrapped by Apply's error for a command of a state
// protocol that not every server has advertised.
var ErrProtocol = errors.New("cluster: not every server speaks the state protocol the command needs")

// checkProtocol refuses a command that some server of the configuration
// could not apply: its build is older than the command's protocol, or it
// has not answered this term's health checks.
func (n *Node) checkProtocol(cmd []byte) error {
	if n.cfg.CommandProtocol == nil {
		return nil
	}
	need, err := n.cfg.CommandProtocol(cmd)
	if err != nil {
		return fmt.Errorf("cluster: apply: %w", err)
	}
	if need <= 1 {
		// Every release speaks protocol 1.
		return nil
	}
	if behind := n.behind(need); len(behind) > 0 {
		return fmt.Errorf("%w: it needs protocol %d; %s: upgrade every server first", ErrProtocol, need, strings.Join(behind, "; "))
	}
	return nil
}

// behind lists the servers of the configuration that have not advertised
// protocol need (or a later one) to this leader in this term.
func (n *Node) behind(need int) []string {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return []string{fmt.Sprintf("the configuration cannot be read (%v)", err)}
	}
	health := map[string]ServerHealth{}
	for _, h := range n.Health() {
		health[h.ID] = h
	}
	var out []string
	for _, s := range f.Configuration().Servers {
		p, said := 0, "has not answered this leader yet"
		switch {
		case string(s.ID) == n.cfg.NodeID:
			p, said = n.cfg.StateProtocol, fmt.Sprintf("speaks protocol %d", n.cfg.StateProtocol)
		case health[string(s.ID)].Info != nil:
			p = max(health[string(s.ID)].Info.StateProtocol, 1)
			said = fmt.Sprintf("speaks protocol %d", p)
		}
		if p < need {
			out = append(out, fmt.Sprintf("server %s at %s %s", s.ID, s.Address, said))
		}
	}
	return out
}
