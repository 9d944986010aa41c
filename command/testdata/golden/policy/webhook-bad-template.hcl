# want: scale.asg.target.webhook.body
shaping "batch" {
  locality {
    node_pool = "batch"
  }

  scale "asg" {
    min = 1
    max = 10

    target "webhook" {
      url  = "https://autoscaler.example.com/groups/batch"
      body = "{\"desired\": {{ .Count }"
    }
  }
}
