# want: prometheus.token_file
# want: no such file or directory
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/policies.d"
}
prometheus {
  address    = "http://127.0.0.1:9090"
  token_file = "testdata/golden/config/files/no-prometheus-token"
}
