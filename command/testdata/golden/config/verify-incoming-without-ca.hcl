# want: tls.ca_file
tls {
  cert_file       = "/etc/foreshape/tls/agent.pem"
  key_file        = "/etc/foreshape/tls/agent-key.pem"
  verify_incoming = true
}
