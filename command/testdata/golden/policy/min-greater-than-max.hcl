# want: scale.frontend.min
# want: greater than max
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  scale "frontend" {
    min = 10
    max = 4

    target "nomad-job" {
      job   = "web"
      group = "frontend"
    }
  }
}
