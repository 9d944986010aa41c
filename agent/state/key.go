package state

import (
	"fmt"
	"strings"
)

// maxKeyPart bounds the length of a key's locality and metric, so a
// malformed command cannot make every node hold an arbitrarily large string.
const maxKeyPart = 512

// Key names one series: one metric of one locality (or node, or allocation).
// Its canonical string form is "locality:metric", for example "dc1/web:cpu".
type Key struct {
	Locality string
	Metric   string
}

// String returns the canonical form "locality:metric".
func (k Key) String() string { return k.Locality + ":" + k.Metric }

// Validate reports whether k can name a series: both parts non-empty, at most
// 512 bytes each, and a metric without ':' so that ParseKey(k.String()) == k.
func (k Key) Validate() error {
	switch {
	case k.Locality == "":
		return fmt.Errorf("state: key %q: empty locality", k.String())
	case k.Metric == "":
		return fmt.Errorf("state: key %q: empty metric", k.String())
	case len(k.Locality) > maxKeyPart || len(k.Metric) > maxKeyPart:
		return fmt.Errorf("state: key %.40q…: longer than %d bytes", k.String(), maxKeyPart)
	case strings.ContainsRune(k.Metric, ':'):
		return fmt.Errorf("state: key %q: metric contains ':'", k.String())
	}
	return nil
}

// ParseKey parses the canonical form "locality:metric". The metric is what
// follows the last ':', so localities may themselves contain ':'.
func ParseKey(s string) (Key, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return Key{}, fmt.Errorf("state: key %q: want locality:metric", s)
	}
	k := Key{Locality: s[:i], Metric: s[i+1:]}
	if err := k.Validate(); err != nil {
		return Key{}, err
	}
	return k, nil
}

// compareKeys orders keys by locality, then metric; snapshots and listings
// use this order so that they are identical on every node.
func compareKeys(a, b Key) int {
	if c := strings.Compare(a.Locality, b.Locality); c != 0 {
		return c
	}
	return strings.Compare(a.Metric, b.Metric)
}
