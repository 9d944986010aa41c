# The Nomad ACL policy foreshape's token needs:
#   nomad acl policy apply -description "foreshape agent" foreshape deploy/foreshape-acl.hcl
#
# Observing (this release): read nodes and their stats, list and read jobs
# and allocations and their stats in every namespace. Acting (reservations,
# scaling, migrations; later releases) adds submit-job, scale-job and
# node write.
namespace "*" {
  policy       = "read"
  capabilities = ["read-job", "list-jobs", "read-job-scaling"]
}

node {
  policy = "read"
}

agent {
  policy = "read"
}

operator {
  policy = "read"
}
