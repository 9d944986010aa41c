# want: scale.asg.target.webhook.url
shaping "batch" {
  locality {
    node_pool = "batch"
  }

  scale "asg" {
    min = 1
    max = 10

    target "webhook" {
      url = "ftp://autoscaler.example.com/groups/batch"
    }
  }
}
