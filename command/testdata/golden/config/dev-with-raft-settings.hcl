# flags: -dev
# want: data_dir
# want: server.raft_port
# Dev mode's one in-memory server keeps no data_dir and binds no Raft port.
data_dir = "/var/lib/foreshape"

server {
  raft_port = 17576
}
