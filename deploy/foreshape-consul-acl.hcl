# The Consul ACL policy the foreshape agents' Consul token (consul_token in
# the jobs' Nomad Variables) needs under Consul's ACLs, and nothing more:
#
#   consul acl policy create -name foreshape -rules @deploy/foreshape-consul-acl.hcl
#   consul acl token create -description "foreshape agents" -policy-name foreshape
#
# Servers and client agents share it. With another consul.service_name,
# name that service instead, and NAME-metrics. Measured on Consul 1.16.4
# and 1.22.0 with default_policy = "deny", the foreshape-metrics rule on
# 1.22.0 (TestConsulACLPolicyReal runs it against the Consul at
# CONSUL_HTTP_ADDR). An agent whose token lacks a grant logs Consul's
# refusal, which names the grant, and this file; a policy made before
# foreshape-metrics takes the new rule in place:
#
#   consul acl policy update -name foreshape -rules @deploy/foreshape-consul-acl.hcl

# write: register the agent's service and its health checks, re-register it
# when the role changes or the Consul agent lost it, deregister it on
# shutdown. It includes read: retry_join "provider=consul" reads the
# servers' entries in the catalog.
service "foreshape" {
  policy = "write"
}

# write: register, re-register and deregister the agent's second service,
# foreshape-metrics, checked on /v1/health alone, which Prometheus finds
# the agents through (docs/telemetry.md): a server that is not ready stays
# in it, where the first one's readiness check leaves it out of Consul's
# DNS. A token without it registers the first service all the same, and
# the agent logs the refusal of this one.
service "foreshape-metrics" {
  policy = "write"
}

# read: the catalog lists a service's entries only on nodes the token may
# read; without it the lookup gets none (Consul answers 200 with an empty
# list) and the servers never find each other.
node_prefix "" {
  policy = "read"
}
