# want: bind_addr
bind_addr = "agent-1.example.com"
