package traces

import (
	"io/fs"
	"strings"
	"testing"
)

func TestEmbeddedSamples(t *testing.T) {
	counts := map[string]int{}
	err := fs.WalkDir(FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		counts[strings.SplitN(path, "/", 2)[0]]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir, min := range map[string]int{"nab": 7, "planetlab": 20, "datacenter": 2} {
		if counts[dir] < min {
			t.Errorf("%s: %d files, want at least %d", dir, counts[dir], min)
		}
	}
	b, err := ReadFile("nab/data/realAWSCloudwatch/ec2_cpu_utilization_53ea38.csv")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "timestamp,value\n") {
		t.Errorf("NAB file does not start with its header: %q", b[:20])
	}
}
