# want: tls.cert_file
# want: tls.key_file
tls {
  key_file = "/etc/foreshape/tls/agent-key.pem"
}
