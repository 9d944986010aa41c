//go:build !linux

package preflight

// kernelFSOf is Linux's check: elsewhere it tells nothing.
func kernelFSOf(string) string { return "" }
