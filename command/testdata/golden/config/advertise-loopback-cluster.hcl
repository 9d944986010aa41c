# want: advertise_addr
# want: 10.0.0.12
bind_addr      = "0.0.0.0"
advertise_addr = "127.0.0.1"
server {
  enabled          = true
  bootstrap_expect = 3
  retry_join       = ["10.0.0.12", "provider=consul"]
}

http {
  address = "10.0.0.11:7575"
}
