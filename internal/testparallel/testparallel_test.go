package testparallel

import (
	"cmp"
	"flag"
	"os"
	"testing"
)

var want string

func TestMain(m *testing.M) {
	// The value given on the command line, if any, stays; otherwise
	// Default sets 7.
	flag.Parse()
	given := ""
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.parallel" {
			given = f.Value.String()
		}
	})
	Default("testparallel", 7)
	want = cmp.Or(given, "7")
	os.Exit(m.Run())
}

func TestDefaultSetsParallel(t *testing.T) {
	if got := flag.Lookup("test.parallel").Value.String(); got != want {
		t.Errorf("test.parallel = %s; want %s", got, want)
	}
}
