# want: acl.token_file
# want: prometheus.iops_query
# want: consul.tags
# want: consul.service_name
# Settings that act only with another one, set without it.
acl {
  token_file = "/etc/foreshape/acl-tokens"
}

prometheus {
  iops_query = "sum(rate(node_disk_reads_completed_total{ {{.Matchers}} }[5m]))"
}

consul {
  service_name = "foreshape-eu"
  tags         = ["shaper"]
}
