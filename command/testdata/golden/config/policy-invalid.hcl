# want: headroom.cpu
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/bad-policy.d"
}
