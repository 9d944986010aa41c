# want: data_dir
# want: the kernel's proc file system
data_dir = "/proc/foreshape"
policies {
  dir = "testdata/golden/config/files/policies.d"
}
