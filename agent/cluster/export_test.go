package cluster

// Crash stops n's Raft as a killed process stops answering: without
// telling its peers it leaves or handing leadership over. Close still
// releases the rest.
func Crash(n *Node) error {
	return n.raft.Shutdown().Error()
}
