//go:build !amd64 || amd64.v3

package num

// mathFused says whether the math package's Go code may fuse a*b+c in this
// build: on GOAMD64=v3 and on architectures that fuse by default.
const mathFused = true
