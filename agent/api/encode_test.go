package api

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/internal/syncbuf"
)

// nonFiniteBackend answers with a forecast whose p50 band holds a NaN at
// its fourth step, a series whose last value is +Inf, and a hotspot whose
// peak is -Inf.
type nonFiniteBackend struct{ fakeBackend }

func (b *nonFiniteBackend) Series(ctx context.Context) []Series {
	return []Series{{Series: "dc1/web:iops", LastValue: math.Inf(1)}}
}

func (b *nonFiniteBackend) Hotspots(ctx context.Context) []Hotspot {
	return []Hotspot{{Policy: "web", Locality: "dc1/web", Metric: "cpu", Peak: math.Inf(-1)}}
}

// TestAnswerThatCannotBeEncoded: an answer JSON cannot carry (a NaN or an
// infinity, which encoding/json refuses) is a 500 whose JSON error names
// the value and where it is, and is logged; it was sent as a 200 whose
// body stopped where the encoder did.
func TestAnswerThatCannotBeEncoded(t *testing.T) {
	f := testForecast()
	f.Bands[1][3] = math.NaN()
	var logs syncbuf.Buffer
	s, err := NewServer(&nonFiniteBackend{fakeBackend{forecasts: []Forecast{f}}},
		Options{Logger: hclog.New(&hclog.LoggerOptions{Output: &logs})})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	for _, tc := range []struct{ path, want string }{
		{"/v1/forecasts", "GET /v1/forecasts: the answer cannot be encoded as JSON: [0].bands[1][3] is NaN, which JSON cannot carry"},
		{"/v1/forecast/dc1/web?metric=cpu", "GET /v1/forecast/dc1/web: the answer cannot be encoded as JSON: [0].bands[1][3] is NaN, which JSON cannot carry"},
		{"/v1/series", "GET /v1/series: the answer cannot be encoded as JSON: [0].last_value is +Inf, which JSON cannot carry"},
		{"/v1/hotspots", "GET /v1/hotspots: the answer cannot be encoded as JSON: [0].peak is -Inf, which JSON cannot carry"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e Error
		if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") != "application/json" ||
			json.Unmarshal(body, &e) != nil || e.Error != tc.want {
			t.Errorf("GET %s: %d %s %s\nwant 500 with the error %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.want)
		}
		if !strings.Contains(logs.String(), "[ERROR] http: answer not encoded: method=GET path="+strings.Split(tc.path, "?")[0]) ||
			!strings.Contains(logs.String(), tc.want) {
			t.Errorf("GET %s: the log does not say so:\n%s", tc.path, logs.String())
		}
	}
	// The same forecast without the NaN is answered as before.
	f.Bands[1][3] = 53
	s2, err := NewServer(&fakeBackend{forecasts: []Forecast{f}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s2.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/forecasts", nil))
	var got []Forecast
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil || len(got) != 1 || got[0].Bands[1][3] != 53 {
		t.Errorf("GET /v1/forecasts: %d %s", rec.Code, rec.Body)
	}
}

func TestNonFinite(t *testing.T) {
	type inner struct {
		V    float64 `json:"v"`
		Skip float64 `json:"-"`
		Raw  float32
	}
	for _, tc := range []struct {
		v    any
		want string
	}{
		{math.NaN(), "the value"},
		{[]float64{1, math.Inf(1)}, "[1]"},
		{map[string]*inner{"b": {V: 1}, "a": {Raw: float32(math.Inf(-1))}}, `["a"].Raw`},
		{[]inner{{Skip: math.NaN()}}, ""},
		{struct{ X any }{X: &inner{V: math.NaN()}}, "X.v"},
	} {
		where, _, ok := nonFinite(tc.v)
		if where != tc.want || ok != (tc.want != "") {
			t.Errorf("nonFinite(%#v) = %q, %v; want %q", tc.v, where, ok, tc.want)
		}
	}
}
