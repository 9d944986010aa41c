# The Consul ACL policy the foreshape agents' Consul token (consul_token in
# the jobs' Nomad Variables) needs under Consul's ACLs, and nothing more:
#
#   consul acl policy create -name foreshape -rules @deploy/foreshape-consul-acl.hcl
#   consul acl token create -description "foreshape agents" -policy-name foreshape
#
# Servers and client agents share it. With another consul.service_name,
# name that service instead. Measured on Consul 1.16.4 and 1.22.0 with
# default_policy = "deny" (TestConsulACLPolicyReal runs it against the
# Consul at CONSUL_HTTP_ADDR). An agent whose token lacks a grant logs
# Consul's refusal, which names the grant, and this file.

# write: register the agent's service and its health checks, re-register it
# when the role changes or the Consul agent lost it, deregister it on
# shutdown. It includes read: retry_join "provider=consul" reads the
# servers' entries in the catalog.
service "foreshape" {
  policy = "write"
}

# read: the catalog lists a service's entries only on nodes the token may
# read; without it the lookup gets none (Consul answers 200 with an empty
# list) and the servers never find each other.
node_prefix "" {
  policy = "read"
}
