# flags: -dev
# want: nomad.address
# want: nomad.token
# want: -dev-sim=false
# Dev mode runs against its embedded simulated Nomad cluster: a Nomad of
# the file's would not be used.
nomad {
  address = "https://nomad.example.com:4646"
  token   = "s3cr3t"
}
