# want: Duplicate policy "web"
# want: duplicate-policy.hcl:3,
shaping "web" {
  locality {
    datacenter = "dc1"
  }
}

shaping "web" {
  locality {
    datacenter = "dc2"
  }
}
