# An agent configuration without prometheus.address, for policy validate
# -config.
data_dir = "/var/lib/foreshape"
