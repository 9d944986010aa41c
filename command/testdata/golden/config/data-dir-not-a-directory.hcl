# want: data_dir
# want: not a directory
data_dir = "testdata/golden/config/files/not-pem.txt"
policies {
  dir = "testdata/golden/config/files/policies.d"
}
