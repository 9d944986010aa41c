# want: scale.frontend.target
# want: lambda
shaping "web" {
  locality {
    datacenter = "dc1"
  }

  scale "frontend" {
    min = 1
    max = 4

    target "lambda" {
      function = "scale-web"
    }
  }
}
