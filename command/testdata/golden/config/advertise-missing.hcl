# want: advertise_addr
# want: advertise-missing.hcl:3,
bind_addr = "0.0.0.0"

server {
  bootstrap_expect = 3
  retry_join       = ["10.0.0.12", "10.0.0.13"]
}

http {
  address = "10.0.0.11:7575"
}
