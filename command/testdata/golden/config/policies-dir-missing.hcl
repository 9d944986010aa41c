# want: policies.dir
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/no-such-dir"
}
