# want: prometheus.ca_file
# want: prometheus.cert_file
# want: https://
# Prometheus's TLS settings with a plain-HTTP address: the agent would
# talk to Prometheus without TLS and never read them.
prometheus {
  address   = "http://10.0.0.5:9090"
  ca_file   = "/etc/foreshape/tls/prometheus-ca.pem"
  cert_file = "/etc/foreshape/tls/prometheus-client.pem"
  key_file  = "/etc/foreshape/tls/prometheus-client-key.pem"
}
