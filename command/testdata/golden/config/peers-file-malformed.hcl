# want: data_dir
# want: peers.json:3,3: not valid JSON
data_dir = "testdata/golden/config/files/peers-data"
policies {
  dir = "testdata/golden/config/files/policies.d"
}
