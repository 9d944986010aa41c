package command

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printable shows the control characters of text that came from outside
// the CLI (a request's reason, which anyone who may submit writes, a job
// name, an error) as Go escapes, as strconv.Quote does: ESC as \x1b, C1's
// CSI as \u009b, a newline as \n, an invalid UTF-8 byte as \xff. Printed
// raw they would move the cursor, clear, recolour or retitle the
// operator's terminal. Unicode's bidirectional controls (U+202E and its
// kind) are escaped too: they reorder what the terminal shows, so that a
// reason can read as something it does not say. Other Unicode is left
// alone, and so are the control characters in keep (the newlines of a
// multi-line error).
func printable(s, keep string) string {
	escape := func(r rune) bool {
		return (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) && !strings.ContainsRune(keep, r)
	}
	if !strings.ContainsFunc(s, escape) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			q := strconv.Quote(s[i : i+1]) // "\xff"
			b.WriteString(q[1 : len(q)-1])
		case escape(r):
			q := strconv.QuoteRune(r) // '\x1b'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// cell is text from outside the CLI for a table's cell or a line of its
// own: printable, its tabs and newlines escaped too, so that it keeps to
// its column and line.
func cell(s string) string { return printable(s, "") }

// oneLine is free text (a reason) on one line: its runs of white space,
// newlines included, as single spaces, and printable.
func oneLine(s string) string { return cell(strings.Join(strings.Fields(s), " ")) }
