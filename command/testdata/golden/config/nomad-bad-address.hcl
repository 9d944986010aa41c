# want: nomad.address
nomad {
  address = "127.0.0.1:4646"
}
