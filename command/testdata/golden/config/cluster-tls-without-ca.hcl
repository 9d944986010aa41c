# want: tls.ca_file
# want: mutual TLS
bind_addr = "10.0.0.11"

server {
  bootstrap_expect = 3
  retry_join       = ["10.0.0.12", "10.0.0.13"]
}

tls {
  cert_file = "/etc/foreshape/tls/agent.pem"
  key_file  = "/etc/foreshape/tls/agent-key.pem"
}

http {
  address = "10.0.0.11:7575"
}
