# want: log_level
# want: verbose
log_level = "verbose"
