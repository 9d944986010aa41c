//go:build amd64 && !amd64.v3

package global

// mathFused says whether the math package's Go code may fuse a*b+c in this
// build: not on amd64 below GOAMD64=v3.
const mathFused = false
