# want: advertise_addr
# want: http.address
http {
  address = "0.0.0.0:7575"
}

consul {
  enabled = true
}
