//go:build unix

package command

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// terminalSize is the width and height in characters of the terminal w
// writes to; 0, 0 when w is not one or does not say.
func terminalSize(w io.Writer) (width, height int) {
	f, ok := w.(*os.File)
	if !ok {
		return 0, 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, 0
	}
	return int(ws.Col), int(ws.Row)
}
