package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/predict"
	"github.com/foreshape/foreshape/agent/state"
)

type anomalyBackend struct{ *fakeBackend }

func (anomalyBackend) Anomalies(context.Context) []Anomaly {
	at := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	return []Anomaly{FromAnomaly(predict.Anomaly{
		Series: state.Key{Locality: "dc1/web", Metric: "cpu"}, Kind: predict.Spike,
		Start: at, End: at.Add(5 * time.Minute), Score: 0.9, P: 2e-9, Alarm: 0.8,
	})}
}

// TestAnomaliesCarryP: /v1/anomalies gives each anomaly's series, kind,
// start, end, score, p-value and alarm score, and the client reads them
// back.
func TestAnomaliesCarryP(t *testing.T) {
	s, err := NewServer(anomalyBackend{&fakeBackend{}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/anomalies")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var raw []map[string]any
	if err := json.Unmarshal(body, &raw); err != nil || len(raw) != 1 {
		t.Fatalf("body %s: %v", body, err)
	}
	if raw[0]["p"] != 2e-9 || raw[0]["score"] != 0.9 || raw[0]["alarm"] != 0.8 || raw[0]["series"] != "dc1/web:cpu" || raw[0]["kind"] != "spike" ||
		raw[0]["start"] != "2026-01-01T10:00:00Z" || raw[0]["end"] != "2026-01-01T10:05:00Z" {
		t.Errorf("anomaly %s", strings.TrimSpace(string(body)))
	}
	got, err := (&Client{Address: srv.URL}).Anomalies(context.Background())
	if err != nil || len(got) != 1 || got[0].P != 2e-9 || got[0].Alarm != 0.8 {
		t.Errorf("client: %+v, %v", got, err)
	}
}
