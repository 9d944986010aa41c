package blocking

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

// TestLimit: Nomad holds a blocking query for its wait (5 minutes when it
// names none, at most 5 minutes, whole milliseconds) plus up to a
// sixteenth; a query without an index is answered at once.
func TestLimit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		q      *nomadapi.QueryOptions
		margin time.Duration
		want   time.Duration
	}{
		{"no options", nil, Margin, Margin},
		{"no index", &nomadapi.QueryOptions{WaitTime: time.Minute}, Margin, Margin},
		{"default wait", &nomadapi.QueryOptions{WaitIndex: 7}, Margin, 5*time.Minute + 18750*time.Millisecond + Margin},
		{"a minute", &nomadapi.QueryOptions{WaitIndex: 7, WaitTime: time.Minute}, Margin, time.Minute + 3750*time.Millisecond + Margin},
		{"past the cap", &nomadapi.QueryOptions{WaitIndex: 7, WaitTime: time.Hour}, Margin, 5*time.Minute + 18750*time.Millisecond + Margin},
		{"under a millisecond is none", &nomadapi.QueryOptions{WaitIndex: 7, WaitTime: time.Microsecond}, Margin, 5*time.Minute + 18750*time.Millisecond + Margin},
		{"milliseconds", &nomadapi.QueryOptions{WaitIndex: 7, WaitTime: 1600*time.Millisecond + 900*time.Microsecond}, 0, 1700 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Limit(tc.q, tc.margin); got != tc.want {
				t.Errorf("Limit = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestBound: a blocking query to a Nomad that takes the request and never
// answers ends with ErrNoAnswer, saying how long it had; one whose caller
// gave up keeps the caller's error; an answer is left as it is.
func TestBound(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("index") != "" {
			select { // a silent connection
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.Header().Set("X-Nomad-Index", "7")
		_, _ = w.Write([]byte("[]"))
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	list := func(ctx context.Context, index uint64) error {
		q, end := Bound(ctx, &nomadapi.QueryOptions{WaitIndex: index, WaitTime: 50 * time.Millisecond}, 50*time.Millisecond)
		_, _, err := client.Nodes().List(q)
		return end(err)
	}

	if err := list(context.Background(), 0); err != nil {
		t.Fatalf("answered query: %v", err)
	}
	err = list(context.Background(), 7)
	if !errors.Is(err, ErrNoAnswer) || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "none within 103.125ms (the blocking query's wait of 50ms, the up to 3.125ms Nomad adds to it, and 50ms)") {
		t.Errorf("held query: %v, want ErrNoAnswer saying how long it had", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if err := list(ctx, 7); errors.Is(err, ErrNoAnswer) || !errors.Is(err, context.Canceled) {
		t.Errorf("query its caller gave up: %v, want the caller's context.Canceled alone", err)
	}
}
