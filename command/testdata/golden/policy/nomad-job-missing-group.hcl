# want: Missing scale.frontend.target.nomad-job.group
# want: group
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  scale "frontend" {
    min = 1
    max = 4

    target "nomad-job" {
      job = "web"
    }
  }
}
