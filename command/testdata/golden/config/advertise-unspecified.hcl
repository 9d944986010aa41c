# want: advertise_addr
bind_addr      = "0.0.0.0"
advertise_addr = "0.0.0.0"
