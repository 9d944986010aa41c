package sim

// RelocateNode gives a node a new datacenter, node pool and node class,
// as its client does when restarted with new settings: it registers the
// same node ID again, and Nomad's node table keeps the node's
// CreateIndex, its scheduling eligibility, its drain and its events,
// moving only its ModifyIndex (a ready node registering again records
// no event). Its allocations stay where they are. key is a node ID or
// name; the datacenter must be one the scenario declares.
func (c *Cluster) RelocateNode(key, datacenter, pool, class string) error {
	c.mu.Lock()
	defer c.unlock()
	n := c.findNode(key)
	if n == nil || n.purged {
		return notFound("node %q not found", key)
	}
	if _, ok := c.localities[datacenter]; !ok {
		return badRequest("datacenter %q is not the scenario's", datacenter)
	}
	n.dc, n.pool, n.class = datacenter, pool, class
	n.modifyIdx = c.bump(TableNodes)
	c.capFreed = true
	return nil
}
