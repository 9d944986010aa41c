# want: nomad.token
# want: token-wrong-type.hcl:4,
nomad {
  token = 12345
}
