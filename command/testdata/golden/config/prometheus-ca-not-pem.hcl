# want: prometheus.ca_file
# want: holds no PEM certificate
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/policies.d"
}
prometheus {
  address = "https://127.0.0.1:9090"
  ca_file = "testdata/golden/config/files/not-pem.txt"
}
