# want: bind_addr
# want: advertise_addr
bind_addr      = "127.0.0.1"
advertise_addr = "10.0.0.11"
server {
  bootstrap_expect = 3
  retry_join       = ["provider=consul"]
}
