//go:build !unix

package command

import "io"

// terminalSize is not known here: queue watch's redraws are not fitted to
// the terminal.
func terminalSize(io.Writer) (width, height int) { return 0, 0 }
