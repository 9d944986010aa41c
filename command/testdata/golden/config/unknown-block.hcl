# want: Unsupported block type
# want: vault
name = "agent-1"

vault {
  address = "https://vault.example.com"
}
