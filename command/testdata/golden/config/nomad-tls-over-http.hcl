# want: nomad.ca_file
# want: nomad.tls_server_name
# want: https://
# Nomad's TLS settings with a plain-HTTP address: the agent would talk to
# Nomad without TLS and never read them.
nomad {
  address         = "http://10.0.0.5:4646"
  ca_file         = "/etc/foreshape/tls/nomad-ca.pem"
  tls_server_name = "server.global.nomad"
}
