# want: policies.dir
# want: not a directory
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/not-pem.txt"
}
