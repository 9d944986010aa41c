# want: http.address
http {
  address = "127.0.0.1"
}
