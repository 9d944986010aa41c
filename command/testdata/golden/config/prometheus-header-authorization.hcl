# want: prometheus.headers
# want: "Authorization" is a header foreshape sets itself
# An Authorization header among prometheus.headers: the token belongs in
# prometheus.token_file. Its value is not shown.
prometheus {
  address = "http://127.0.0.1:9090"
  headers = {
    "X-Scope-OrgID" = "tenant-1"
    "Authorization" = "Bearer s3cret-token"
  }
}
