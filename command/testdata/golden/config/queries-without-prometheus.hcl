# want: prometheus.address
# want: forecast.queries
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/queries.d"
}
