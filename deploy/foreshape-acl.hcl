# The Nomad ACL policy the foreshape agents' token needs, and nothing more:
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
  # scale-job: the nomad-job scale target changes a task group's count.
  capabilities = ["read-job", "scale-job"]
}

node {
  # read: list the nodes and read their host stats (the leader for nodes
  # without a client agent, a client agent for its own node).
  policy = "read"
}

agent {
  # read: a client agent without nomad.node_id asks its local Nomad agent
  # which node it runs on.
  policy = "read"
}
