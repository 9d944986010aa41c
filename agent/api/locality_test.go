package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/foreshape/foreshape/agent/api"
)

// TestMalformedLocalityInAPath: GET /v1/forecast/LOCALITY with a LOCALITY
// that is not a locality's path form (nor, so, a policy's name) is a 400
// saying what is wrong with it; it was a 404 "no policy forecasts it", as
// for a well-formed locality nothing forecasts, which still is.
func TestMalformedLocalityInAPath(t *testing.T) {
	b := cyclelessBackend{policies: []api.Policy{{Name: "dc1-web", Locality: "dc1/web"}}, cycle: &api.Cycle{},
		forecasts: []api.Forecast{{Policy: "dc1-web", Locality: "dc1/web", Metric: "cpu", Status: api.ForecastWarmingUp}}}
	s, err := api.NewServer(b, api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	const takes = ": GET /v1/forecast/LOCALITY takes a locality's path form, DATACENTER[/NODE_POOL[/NODE_CLASS]], or a policy's name"
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"", 400, `locality "" must be DATACENTER[/NODE_POOL[/NODE_CLASS]] without spaces` + takes},
		{"dc1/web/", 400, `locality "dc1/web/" has an empty part; use "*" for any` + takes},
		{"dc1//web", 400, `locality "dc1//web" has an empty part; use "*" for any` + takes},
		{"/dc1", 400, `locality "/dc1" has an empty part; use "*" for any` + takes},
		{"dc1/web/c1/x", 400, `locality "dc1/web/c1/x" has more than three parts (DATACENTER/NODE_POOL/NODE_CLASS)` + takes},
		{"*", 400, `locality "*" matches everything; name at least a datacenter, node pool or node class` + takes},
		{"*/*", 400, `locality "*/*" matches everything; name at least a datacenter, node pool or node class` + takes},
		{"dc1/we%20b", 400, `locality "dc1/we b" contains whitespace` + takes},
		{"%20dc1", 400, `locality " dc1" must be DATACENTER[/NODE_POOL[/NODE_CLASS]] without spaces` + takes},
		{"dc1/web?metric=cpu&history=maybe", 400, `history: "maybe" is not a boolean (true, false, 1, 0, t, f, TRUE, FALSE, True or False)`},
		// The mux would redirect these to the cleaned path: dc1/web's.
		{"dc2/../dc1/web", 400, `locality "dc2/../dc1/web" has a . or .. part, which a path cannot carry as a name` + takes},
		{"./dc1/web", 400, `locality "./dc1/web" has a . or .. part, which a path cannot carry as a name` + takes},
		{"dc1/web/.", 400, `locality "dc1/web/." has a . or .. part, which a path cannot carry as a name` + takes},
		// Well formed: answered as before.
		{"dc9", 404, `no forecast for locality "dc9": no policy forecasts it; the localities forecast: dc1/web`},
		{"*/web", 404, `no forecast for locality "*/web": no policy forecasts it; the localities forecast: dc1/web`},
		{"dc1/web?metric=iops", 404, `no forecast for locality "dc1/web" metric "iops": its policies forecast cpu`},
		{"dc1/web", 200, ""},
		{"dc1-web", 200, ""},
	} {
		resp, err := http.Get(srv.URL + "/v1/forecast/" + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e api.Error
		if resp.StatusCode != tc.code || (tc.want != "" && (json.Unmarshal(body, &e) != nil || e.Error != tc.want)) {
			t.Errorf("GET /v1/forecast/%s: %d %s\nwant %d %q", tc.path, resp.StatusCode, body, tc.code, tc.want)
		}
	}
	// The empty part the mux would have redirected away goes through the
	// endpoint's token and parameter checks first, as every request does.
	s, err = api.NewServer(b, api.Options{Tokens: []string{"secret"}})
	if err != nil {
		t.Fatal(err)
	}
	acl := httptest.NewServer(s)
	defer acl.Close()
	for _, tc := range []struct {
		token, query string
		code         int
	}{{"", "", 403}, {"secret", "?limit=1", 400}, {"secret", "", 400}} {
		req, _ := http.NewRequest(http.MethodGet, acl.URL+"/v1/forecast/dc1//web"+tc.query, nil)
		if tc.token != "" {
			req.Header.Set("X-Foreshape-Token", tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("GET /v1/forecast/dc1//web%s with token %q: %d %s, want %d", tc.query, tc.token, resp.StatusCode, body, tc.code)
		}
	}
}
