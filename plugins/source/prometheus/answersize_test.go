package prometheus

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/plugins/source"
)

// TestAnswerSizeIsBounded: an answer whose body passes MaxAnswer fails its
// query, saying so, rather than be read whole into memory (a query that
// selects every node's series, not its locality's, over 10,000 steps); the
// same answer under the default bound is read.
func TestAnswerSizeIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	// Mostly waits on its own Prometheus (own port, own targets): run
	// beside the others.
	t.Parallel()
	prom, _, now := startProm(t)
	web := source.Locality{Datacenter: "dc2"}
	req := source.Request{Now: now, Lookback: 10 * time.Second, Step: time.Second, Localities: []source.Locality{web}}
	s, err := New(Config{Address: prom.URL, Queries: map[string]string{source.IOPS: iopsQuery}, MaxAnswer: 40}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Collect(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "the answer is larger than 40 bytes") || len(res.Samples) != 0 || len(res.Stale) != 1 {
		t.Errorf("%d samples, %d stale, error %v; want the query failed for its answer's size", len(res.Samples), len(res.Stale), err)
	}
	s, err = New(Config{Address: prom.URL, Queries: map[string]string{source.IOPS: iopsQuery}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.Collect(context.Background(), req); err != nil || len(res.Samples) == 0 {
		t.Errorf("under the default bound: %d samples, error %v; want the answer read", len(res.Samples), err)
	}
}
