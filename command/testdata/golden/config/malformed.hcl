# want: address
nomad {
  address = "http://127.0.0.1:4646
}
