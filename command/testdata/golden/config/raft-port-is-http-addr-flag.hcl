# flags: -http-addr 127.0.0.1:7400
# want: server.raft_port
# want: flag -http-addr
data_dir = "testdata/golden/config/files/no-data"
policies {
  dir = "testdata/golden/config/files/policies.d"
}
server {
  raft_port = 7400
}
