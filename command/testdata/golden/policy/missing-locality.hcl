# want: locality
shaping "web" {
  headroom {
    cpu = 30
  }
}
