# want: scale.onprem.target.exec.command
shaping "batch" {
  locality {
    node_pool = "batch"
  }

  scale "onprem" {
    min = 0
    max = 8

    target "exec" {
      command = []
    }
  }
}
