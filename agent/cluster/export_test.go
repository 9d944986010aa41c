package cluster

import "github.com/hashicorp/raft"

// Crash stops n's Raft as a killed process stops answering: without
// telling its peers it leaves or handing leadership over. Close still
// releases the rest.
func Crash(n *Node) error {
	return n.raft.Shutdown().Error()
}

// OlderTransport makes c's server act as a server of a release before the
// Raft hello: it dials Raft connections without one and closes a hello
// unanswered.
func OlderTransport(c *Config) { c.olderTransport = true }

// OlderRecovered makes c's server act as a server of a release before a
// refusal carried the Recovery of the refused server's cluster: it
// neither sends one nor takes one.
func OlderRecovered(c *Config) { c.olderRecovered = true }

// TransferLeadership hands n's leadership to the server id at address, or
// to the most up-to-date other voter when id is "".
func TransferLeadership(n *Node, id, address string) error {
	if id == "" {
		return n.raft.LeadershipTransfer().Error()
	}
	return n.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(address)).Error()
}

// OnApplyWaiting has n call fn as an Apply starts waiting for the
// restore of a backup under way; set before any Apply it should see.
func OnApplyWaiting(n *Node, fn func()) { n.applyWaits = fn }
