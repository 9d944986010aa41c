package proof

import (
	"net/http"
	"net/http/httptest"

	nomadapi "github.com/hashicorp/nomad/api"
)

// handlerTransport serves HTTP requests with a handler in process: the
// request and response go through the handler exactly as over a socket
// (status, headers, body), without a listener.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	req := r.Clone(r.Context())
	if req.Body == nil {
		req.Body = http.NoBody
	}
	req.RequestURI = r.URL.RequestURI()
	if req.Host == "" {
		req.Host = r.URL.Host
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// nomadClient returns a real Nomad API client whose requests h serves.
func nomadClient(h http.Handler) (*nomadapi.Client, error) {
	return nomadapi.NewClient(&nomadapi.Config{
		Address:    "http://nomad.sim:4646",
		HttpClient: &http.Client{Transport: handlerTransport{h}},
	})
}
