# want: server.raft_port
server {
  enabled          = true
  bootstrap_expect = 1
  raft_port        = 70000
}
