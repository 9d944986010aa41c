# want: scale.asg.target.webhook.body
# want: does not render over the scale payload
shaping "batch" {
  locality {
    node_pool = "batch"
  }

  scale "asg" {
    min = 1
    max = 10

    target "webhook" {
      url  = "https://autoscaler.example.com/groups/batch"
      body = "{\"desired\": {{ .Desired }}"
    }
  }
}
