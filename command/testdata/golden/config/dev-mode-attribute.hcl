# want: Unsupported argument
# want: dev_mode
dev_mode = true
