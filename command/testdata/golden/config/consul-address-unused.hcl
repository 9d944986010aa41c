# want: consul.address
# want: consul.token
# want: consul.enabled
# Consul's address and token, but the agent neither registers in Consul
# nor looks its servers up there.
consul {
  address = "10.0.0.5:8500"
  token   = "consul-secret"
}
