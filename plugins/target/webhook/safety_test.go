package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/plugins/target"
)

// A receiver that answers with a redirect gets no scale: the target does
// not follow it and the action is refused, naming where it pointed. Go's
// client followed it: a 302 to a login page turned the POST into a GET
// whose 200 counted as a scale that never happened, and the policy's
// headers (an X-Api-Key) went along to the other host.
func TestRedirectIsNotFollowed(t *testing.T) {
	var mu sync.Mutex
	var elsewhere []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		elsewhere = append(elsewhere, r.Method+" key="+r.Header.Get("X-Api-Key"))
		mu.Unlock()
		fmt.Fprintln(w, "<html>sign in</html>")
	}))
	t.Cleanup(other.Close)
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.URL+"/login", code)
			}))
			t.Cleanup(srv.Close)
			cfg, diags := decode(t, `url = "`+srv.URL+`/scale"`+"\n"+`headers = { "X-Api-Key" = "k3y" }`)
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			s := &sleeps{}
			tg, err := New(cfg, target.Env{Sleep: s.sleep})
			if err != nil {
				t.Fatal(err)
			}
			_, err = tg.Scale(context.Background(), action("r", 4))
			if !errors.Is(err, target.ErrRefused) || !strings.Contains(err.Error(), fmt.Sprint(code)) ||
				!strings.Contains(err.Error(), other.URL+"/login") || !strings.Contains(err.Error(), "not followed") {
				t.Errorf("err = %v; want a refusal naming the %d and where it pointed", err, code)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(elsewhere) > 0 {
				t.Errorf("the redirect was followed: %v", elsewhere)
			}
		})
	}
}

// Neither the agent's log nor the error and notes the coordinator records
// carry a header's value, the URL's password or its query's values,
// whatever the request's fate; the log line names the policy and the scale
// block.
func TestSecretsStayOutOfLogsAndErrors(t *testing.T) {
	secrets := []string{"s3cret-bearer", "k3y-value", "pa55word", "qu3ry-token"}
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // else the server does not see the client leave
		switch r.URL.Path {
		case "/fail":
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case "/refuse":
			http.Error(w, "no", http.StatusForbidden)
		case "/hang":
			select {
			case <-r.Context().Done():
			case <-hang:
			}
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hang) }) // before srv.Close, which waits for the handlers
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, base := range []string{srv.URL + "/fail", srv.URL + "/refuse", srv.URL + "/hang", closed.URL + "/down"} {
		t.Run(path.Base(base), func(t *testing.T) {
			u := strings.Replace(base, "http://", "http://ops:pa55word@", 1) + "?token=qu3ry-token&pool=batch"
			cfg, diags := decode(t, `url = "`+u+`"
timeout = "200ms"
retries = 1
headers = {
  Authorization = "Bearer s3cret-bearer"
  "X-Api-Key"   = "k3y-value"
}`)
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			var logs bytes.Buffer
			log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})
			s := &sleeps{}
			tg, err := New(cfg, target.Env{Sleep: s.sleep, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			res, err := tg.Scale(context.Background(), action("s", 4))
			if err == nil {
				t.Fatal("the scale succeeded")
			}
			var te *target.Error
			errors.As(err, &te)
			out := logs.String() + "\n" + err.Error() + "\n" + te.Reason + "\n" + strings.Join(res.Notes, "\n")
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("%q shows in:\n%s", s, out)
				}
			}
			if l := logs.String(); !strings.Contains(l, "scale failed:") || !strings.Contains(l, " policy=batch ") || !strings.Contains(l, " scale=asg ") {
				t.Errorf("the log line does not name the policy and the scale block:\n%s", logs.String())
			}
			if !strings.Contains(out, "/"+path.Base(base)+"?pool=xxxxx&token=xxxxx") {
				t.Errorf("the URL is not shown with its query's names and xxxxx:\n%s", out)
			}
		})
	}
}

// Any 2xx answer is success, whatever its body: the receiver's status
// code is its answer.
func TestAnyTwoHundredIsSuccess(t *testing.T) {
	for _, tc := range []struct {
		code int
		body string
	}{{200, ""}, {200, "\x00\xffnot json"}, {201, `{"ok": false}`}, {204, ""}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.code)
			_, _ = io.WriteString(w, tc.body)
		}))
		cfg, diags := decode(t, `url = "`+srv.URL+`/scale"`)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		tg, err := New(cfg, target.Env{})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := tg.Scale(context.Background(), action("ok", 4)); err != nil || res.Count != 4 {
			t.Errorf("%d %q: %+v, %v; want success at count 4", tc.code, tc.body, res, err)
		}
		srv.Close()
	}
}

// TestCertificateFromAnotherCA: the receiver's certificate is checked
// against the system's roots; one they do not vouch for fails each action
// (there is no setting for another CA).
func TestCertificateFromAnotherCA(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	defer srv.Close()
	cfg, diags := decode(t, `url = "`+srv.URL+`/scale"`+"\nretries = 0")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	tg, err := New(cfg, target.Env{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tg.Scale(context.Background(), action("tls", 4))
	if !errors.Is(err, target.ErrFailed) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("err = %v; want a failure saying the certificate is not trusted", err)
	}
}

// TestHostHeader: a Host among the headers is the request's Host (a
// receiver behind an address that serves several names); Go's client
// dropped it silently.
func TestHostHeader(t *testing.T) {
	var mu sync.Mutex
	var hosts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
	}))
	defer srv.Close()
	cfg, diags := decode(t, `url = "`+srv.URL+`/scale"`+"\n"+`headers = { host = "scaler.internal" }`)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	tg, err := New(cfg, target.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Scale(context.Background(), action("h", 4)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hosts) != 1 || hosts[0] != "scaler.internal" {
		t.Errorf("the receiver saw Host %v; want scaler.internal", hosts)
	}
}

// TestBodyTemplateJSON: a body template writes a field as JSON with
// {{ json . }}: the reason, which always holds quotes ("scale \"asg\" up
// by 2 …"), comes out as a valid JSON string, where "{{ .Reason }}" gave
// the receiver broken JSON. The json function did not exist: the policy
// was refused.
func TestBodyTemplateJSON(t *testing.T) {
	r := newReceiver(t, 1)
	tg, _ := newTarget(t, r, `body = "{\"desired\": {{ .Count }}, \"why\": {{ json .Reason }}, \"at\": {{ json .Time }}, \"id\": {{ json .RequestID }}}"`)
	a := action("j", 5)
	a.Reason = "scale \"asg\" up by 2 for */batch:\n<reservation> does not fit"
	if _, err := tg.Scale(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Desired int
		Why     string
		At      time.Time
		ID      string
	}
	if err := json.Unmarshal([]byte(r.bodies[0]), &got); err != nil {
		t.Fatalf("body %s is no JSON: %v", r.bodies[0], err)
	}
	if got.Desired != 5 || got.Why != a.Reason || !got.At.Equal(a.Time) || got.ID != "j" {
		t.Errorf("body %s read back as %+v", r.bodies[0], got)
	}
}

// TestCallerGivingUpIsLogged: an action whose caller's context ends while
// the receiver has not answered (a leader losing its leadership) ends
// timed out, and the target's log says so with the policy and the scale
// block, as for every other failure; it said nothing.
func TestCallerGivingUpIsLogged(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hang) })
	cfg, diags := decode(t, `url = "`+srv.URL+`/scale"`+"\ntimeout = \"30s\"")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	var logs bytes.Buffer
	tg, err := New(cfg, target.Env{Logger: hclog.New(&hclog.LoggerOptions{Output: &logs})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = tg.Scale(ctx, action("gone", 4))
	if !errors.Is(err, target.ErrTimeout) {
		t.Errorf("err = %v, want a timeout", err)
	}
	if l := logs.String(); !strings.Contains(l, "scale failed:") || !strings.Contains(l, " policy=batch ") || !strings.Contains(l, " scale=asg ") {
		t.Errorf("no scale failed line naming the policy and the scale block:\n%s", l)
	}
}
