# want: locality.datacenter
# want: node/
shaping "web" {
  locality {
    datacenter = "node"
    node_pool  = "web"
  }
}
