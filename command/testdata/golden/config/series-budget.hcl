# want: policies.dir
# want: more than the 100000 the series store holds
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/generated"
}
