package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/internal/backoff"
	"github.com/foreshape/foreshape/plugins/target"
)

// maxAnswer is how much of an error answer's body an error quotes.
const maxAnswer = 512

// Headers foreshape sets on every webhook request (besides the policy's).
const (
	// HeaderIdempotencyKey carries the action's ID, the same on every
	// retry, so the receiver can tell a retry from a new action.
	HeaderIdempotencyKey = "Idempotency-Key"
	userAgent            = "foreshape"
)

// Target sends scale actions to a URL.
type Target struct {
	cfg   *Config
	http  *http.Client
	log   hclog.Logger
	sleep func(context.Context, time.Duration) error
}

var _ target.Target = (*Target)(nil)

// New builds a webhook target from its decoded settings. It performs no I/O.
func New(settings any, env target.Env) (target.Target, error) {
	cfg, ok := settings.(*Config)
	if !ok || cfg == nil || cfg.URL == nil {
		return nil, fmt.Errorf("settings are %T, want a decoded *webhook.Config", settings)
	}
	hc := &http.Client{}
	if env.HTTP != nil {
		c := *env.HTTP
		hc = &c
	}
	// A redirect is an answer, not followed: Go's client turns a POST
	// answered 301, 302 or 303 into a GET (whose 200 would count as a
	// scale that never happened) and sends the policy's headers to the
	// host the answer names.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Target{cfg: cfg, http: hc, sleep: env.SleepFunc(),
		log: env.Log().With("plugin", Name, "url", shown(cfg.URL))}, nil
}

// shown is u as logs and errors show it: its password and its query's
// values (where webhooks often take a token, ?token=…) are xxxxx, and
// its fragment is left out.
func shown(u *url.URL) string {
	c := *u
	c.Fragment, c.RawFragment = "", ""
	if c.RawQuery != "" {
		q := c.Query()
		for k := range q {
			for i := range q[k] {
				q[k][i] = "xxxxx"
			}
		}
		c.RawQuery = q.Encode()
	}
	return c.Redacted()
}

// Status reports that a webhook's count is not known to foreshape; the
// receiver's new capacity shows up in the cluster itself.
func (t *Target) Status(ctx context.Context) (target.Status, error) {
	return target.Status{Ready: true}, nil
}

// Scale sends the action, retrying timeouts, connection errors, 408, 429
// and 5xx answers up to Retries times.
func (t *Target) Scale(ctx context.Context, a target.Action) (_ target.Result, err error) {
	if err := a.Validate(); err != nil {
		return target.Result{}, &target.Error{Plugin: Name, Kind: target.Refused, Reason: err.Error(), Err: err}
	}
	log := t.log.With(a.LogArgs()...)
	// Every failure is logged, one whose caller gave up too.
	defer func() {
		if err != nil {
			log.Warn("scale failed", "error", err)
		}
	}()
	body, err := t.body(a)
	if err != nil {
		return target.Result{}, &target.Error{Plugin: Name, Kind: target.Refused, Reason: err.Error(), Err: err}
	}
	var res target.Result
	// retry is the last back-off: 1s, doubling, at most 30s, unless the
	// answer's Retry-After says how long.
	var retry time.Duration
	timedOut := false // an attempt went unanswered: it may have acted
	for {
		res.Attempts++
		wait, kind, err := t.send(ctx, a.ID, body)
		if err == nil {
			res.Count = a.Count
			log.Info("scaled", "attempts", res.Attempts)
			return res, nil
		}
		timedOut = timedOut || kind == target.Timeout
		if kind == target.Failed && timedOut {
			kind = target.Timeout
		}
		e := &target.Error{Plugin: Name, Kind: kind, Attempts: res.Attempts, Err: err,
			Reason: fmt.Sprintf("%s %s: %v", t.cfg.Method, shown(t.cfg.URL), err)}
		if ctx.Err() != nil {
			e.Kind, e.Err = target.Timeout, errors.Join(err, ctx.Err())
			return res, e
		}
		if kind == target.Refused || res.Attempts > t.cfg.Retries {
			return res, e
		}
		if wait <= 0 {
			retry = backoff.Next(retry)
			wait = retry
		}
		res.Notes = append(res.Notes, fmt.Sprintf("attempt %d: %v; retrying in %s", res.Attempts, err, wait))
		log.Debug("retrying", "attempt", res.Attempts, "error", err, "wait", wait)
		if err := t.sleep(ctx, wait); err != nil {
			e.Kind, e.Err = target.Timeout, errors.Join(e.Err, err)
			return res, e
		}
	}
}

// body renders the request body: the policy's template over the payload,
// or the payload as JSON.
func (t *Target) body(a target.Action) ([]byte, error) {
	p := a.Payload()
	if t.cfg.Body == nil {
		return json.Marshal(p)
	}
	var buf bytes.Buffer
	if err := t.cfg.Body.Execute(&buf, p); err != nil {
		return nil, fmt.Errorf("render the body template: %w", err)
	}
	return buf.Bytes(), nil
}

// send makes one attempt. It returns how long the answer asks to wait
// before the next (Retry-After), and the kind of a failure.
func (t *Target) send(ctx context.Context, id string, body []byte) (time.Duration, target.Kind, error) {
	actx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, t.cfg.Method, t.cfg.URL.String(), bytes.NewReader(body))
	if err != nil {
		return 0, target.Refused, err
	}
	for k, v := range t.cfg.Headers {
		req.Header.Set(k, v)
	}
	if h, ok := t.cfg.Headers["Host"]; ok {
		// Go's client sends req.Host and ignores a Host header.
		req.Host = h
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(HeaderIdempotencyKey, id)
	req.Header.Set("User-Agent", userAgent)
	resp, err := t.http.Do(req)
	if err != nil {
		if actx.Err() != nil {
			return 0, target.Timeout, fmt.Errorf("no answer within %s", t.cfg.Timeout)
		}
		// The client's error repeats the URL, query and all: the caller
		// names it, shown.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, target.Failed, err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode/100 == 2 {
		return 0, 0, nil
	}
	if resp.StatusCode/100 == 3 {
		to := "nowhere"
		if loc, err := resp.Location(); err == nil {
			to = shown(loc)
		}
		return 0, target.Refused, fmt.Errorf("answered %s pointing to %s; redirects are not followed: set url to the receiver's own", resp.Status, to)
	}
	err = fmt.Errorf("answered %s: %s", resp.Status, strings.TrimSpace(string(answer)))
	switch {
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return retryAfter(resp.Header.Get("Retry-After")), target.Failed, err
	default:
		return 0, target.Refused, err
	}
}

// retryAfter reads a Retry-After header in seconds, capped at backoff.Max.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, backoff.Max)
}
