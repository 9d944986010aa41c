package command

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestRemoteSimClockEstimatesSpeed(t *testing.T) {
	wall0 := time.Now()
	data0 := time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/sim/clock" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		now := data0.Add(time.Duration(float64(time.Since(wall0)) * 120))
		_ = json.NewEncoder(w).Encode(map[string]any{"Now": now})
	}))
	defer srv.Close()
	c := &remoteSimClock{address: srv.URL}
	now, err := c.Now(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if now.Before(data0) {
		t.Errorf("Now = %v, before the sim's start", now)
	}
	if s := c.Speed(); s < 60 || s > 240 {
		t.Errorf("Speed = %v after the first reading, want about 120", s)
	}
	bad := &remoteSimClock{address: srv.URL + "/nope"}
	if _, err := bad.Now(context.Background()); err == nil {
		t.Error("no error from a server that is not a simulator")
	}
}
