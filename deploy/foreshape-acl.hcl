# The Nomad ACL policy the foreshape agents need, and nothing more. Attach
# it to each job before it runs; the agents' workload identities carry it:
#
#   nomad acl policy apply -namespace default -job foreshape-servers -description "foreshape servers" foreshape-servers deploy/foreshape-acl.hcl
#   nomad acl policy apply -namespace default -job foreshape-clients -description "foreshape clients" foreshape-clients deploy/foreshape-acl.hcl
#
# With a static token instead (docs/deployment.md):
#
#   nomad acl policy apply -description "foreshape agents" foreshape deploy/foreshape-acl.hcl
#   nomad acl token create -name foreshape -policy foreshape
#
# Every capability below is named by a Nomad API call the agents make;
# deploy/acl_test.go checks that against the code. Servers and client
# agents share the policy.

namespace "*" {
  # read-job: read allocations (list, stats) to follow their usage and
  # moves, and jobs, their scaling status, deployments and evaluations.
  # list-jobs: find the placeholder jobs (foreshape-reserve-*) a leader
  # left behind.
  # submit-job: register, resize and stop the placeholder jobs that hold
  # capacity for a migration. Nomad grants it for every job of the
  # namespace, not by name: the agents only ever register or stop jobs
  # named foreshape-reserve-*.
  # scale-job: the nomad-job scale target changes a task group's count.
  # alloc-lifecycle: stop an allocation so that Nomad places it again: a
  # migration.
  capabilities = ["read-job", "list-jobs", "submit-job", "scale-job", "alloc-lifecycle"]
}

node {
  # write: drain nodes and toggle their scheduling eligibility (whole-node
  # moves and steering replacements); it includes read: list the nodes and
  # read their host stats (the leader for nodes without a client agent, a
  # client agent for its own node).
  policy = "write"
}

agent {
  # read: a client agent without nomad.node_id asks its local Nomad agent
  # which node it runs on.
  policy = "read"
}
