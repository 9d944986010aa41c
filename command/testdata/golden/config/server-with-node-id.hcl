# want: nomad.node_id
# A server reads every node: a node of its own is a client agent's setting.
nomad {
  node_id = "9e3f1c0a-5b2d-4c1e-8f00-1a2b3c4d5e6f"
}
