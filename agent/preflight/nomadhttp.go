package preflight

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/internal/blocking"
	promsource "github.com/foreshape/foreshape/plugins/source/prometheus"
)

// DefaultNomadTimeout bounds each Nomad API call the agent makes that is
// not a blocking query: a Nomad server that stops answering in the middle
// of a call fails that call after this long instead of holding the
// leader's cycle (and its forecasts) until the connection dies.
const DefaultNomadTimeout = 30 * time.Second

// useNomadHTTPClient gives ncfg the agent's HTTP client for Nomad: the
// transport the nomad/api client would build (HTTP/1, TLS 1.2 at least,
// the TLS config's CA, client certificate and server name; a unix://
// address dials that socket), each request bounded by timeout plus, for a
// blocking query, the wait it asks Nomad for. With tokenFile (nomad.token_file)
// every request carries the token that file holds when it is sent.
func useNomadHTTPClient(ncfg *nomadapi.Config, timeout time.Duration, tokenFile string) error {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSHandshakeTimeout = 10 * time.Second
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	t.ForceAttemptHTTP2 = false
	if strings.HasPrefix(ncfg.Address, "unix://") {
		u, err := url.Parse(ncfg.Address)
		if err != nil {
			return err
		}
		socket := u.EscapedPath()
		var d net.Dialer
		t.Proxy = nil
		t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		}
		ncfg.Address = "http://127.0.0.1"
	}
	hc := &http.Client{Transport: t}
	if err := nomadapi.ConfigureTLS(hc, ncfg.TLSConfig); err != nil {
		return err
	}
	bt := boundedTransport{base: t, timeout: timeout, tokenFile: tokenFile}
	if tc := ncfg.TLSConfig; tc != nil {
		bt.tls = nomadTLSFiles{ca: tc.CACert, cert: tc.ClientCert}
	}
	hc.Transport = bt
	ncfg.HttpClient = hc
	return nil
}

// nomadTLSFiles are the nomad block's TLS files, named when a call fails in
// its TLS handshake (explainTLS).
type nomadTLSFiles struct {
	ca, cert string // nomad.ca_file, nomad.cert_file
}

// clientCertAlerts are the TLS alerts a server sends about the client's
// certificate, as Go's client words them.
var clientCertAlerts = []string{"tls: certificate required", "tls: bad certificate", "tls: unknown certificate authority",
	"tls: expired certificate", "tls: revoked certificate", "tls: unsupported certificate", "tls: unknown certificate"}

// explainTLS adds to a call's failure in the TLS handshake with Nomad
// (at host) which nomad setting to check: Go's words name none. A Nomad
// that verifies its clients (tls.verify_https_client) answers a call
// without a certificate its CA signed with an alert ("remote error: tls:
// certificate required" from Nomad 2.0.6-dev, measured; a client sends
// no certificate of a CA the server does not list, so one of another CA
// gets the same); the agent itself refuses a Nomad certificate of a CA
// it does not trust, or without the name it checks. Any other error is
// returned as it is.
func explainTLS(err error, host string, f nomadTLSFiles) error {
	var op *net.OpError
	var unknownCA x509.UnknownAuthorityError
	var wrongName x509.HostnameError
	var hint string
	switch {
	case errors.As(err, &op) && op.Op == "remote error" && slices.Contains(clientCertAlerts, op.Err.Error()):
		hint = fmt.Sprintf("Nomad at %s asks for a client certificate (its tls.verify_https_client) and the agent gives none: "+
			"set nomad.cert_file and nomad.key_file (NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY) to a certificate that Nomad's CA signed", host)
		if f.cert != "" {
			hint = fmt.Sprintf("Nomad at %s refused the agent's client certificate, nomad.cert_file %s: "+
				"check that Nomad's CA (its tls.ca_file) signed it, and its dates", host, f.cert)
		}
	case errors.As(err, &unknownCA):
		hint = fmt.Sprintf("the agent does not trust the certificate of Nomad at %s: set nomad.ca_file (NOMAD_CACERT) to Nomad's CA", host)
		if f.ca != "" {
			hint = fmt.Sprintf("the agent does not trust the certificate of Nomad at %s: check that nomad.ca_file %s is the CA that signed it", host, f.ca)
		}
	case errors.As(err, &wrongName):
		// The name checked: nomad.tls_server_name, or else the host.
		hint = fmt.Sprintf("the agent checks the certificate of Nomad at %s for %s (nomad.tls_server_name, or else nomad.address's host): "+
			"set nomad.tls_server_name to a name it has (nomad tls cert create names a client's certificate client.<region>.nomad, "+
			"a server's server.<region>.nomad)", host, wrongName.Host)
	}
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w; %s", err, hint)
}

// boundedTransport gives every request a deadline: timeout, plus the wait
// of a blocking query (one with an index), plus the jitter Nomad adds to
// that wait (up to a sixteenth). The deadline covers reading the body.
type boundedTransport struct {
	base    http.RoundTripper
	timeout time.Duration
	// tokenFile, when set, is read for every request, as
	// prometheus.token_file is (promsource.ReadCredential): Nomad writes a
	// workload identity's token file anew, and the next request carries
	// the new token without a restart.
	tokenFile string
	// tls names the TLS files in what explainTLS adds to a failed
	// handshake.
	tls nomadTLSFiles
}

func (b boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if b.tokenFile != "" {
		tok, err := promsource.ReadToken(b.tokenFile)
		if err != nil {
			if req.Body != nil {
				_ = req.Body.Close()
			}
			return nil, fmt.Errorf("cannot read the Nomad token (nomad.token_file): %w", err)
		}
		req = req.Clone(req.Context())
		req.Header.Set("X-Nomad-Token", tok)
	}
	limit := b.limit(req)
	ctx, cancel := context.WithTimeout(req.Context(), limit)
	resp, err := b.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		// The log says which Nomad kept silent and for how long, not
		// only "context deadline exceeded".
		if ctx.Err() == context.DeadlineExceeded && req.Context().Err() == nil {
			//lint:ignore ST1005 Nomad is a name.
			err = fmt.Errorf("Nomad at %s did not answer within %s: %w", req.URL.Host, limit, err)
		}
		if req.URL.Scheme == "https" {
			err = explainTLS(err, req.URL.Host, b.tls)
		}
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusInternalServerError:
		explainRefusal(req, resp, b.tokenFile)
	}
	return resp, nil
}

// aclRefusals are the answers Nomad gives a call its ACLs refuse, with
// 403: a token it does not know or whose policies lack the call's grant
// ("Permission denied"; no token is the anonymous token, refused the same
// way) or one that has expired. The Task API's socket
// (unix://${NOMAD_SECRETS_DIR}/api.sock) answers a token it does not know
// with 403 "Forbidden" before the call's own check (measured on Nomad
// 2.0.6-dev).
var aclRefusals = []string{"Permission denied", "ACL token not found", "ACL token expired", "Forbidden"}

// taskAPIRefusals are the Task API socket's answers, with 401, to a call
// without a token: it serves no anonymous calls, ACLs on or off (measured
// on Nomad 2.0.6-dev: "Unauthorized").
var taskAPIRefusals = []string{"Unauthorized"}

// tokenFailures are the answers, with 500, that Nomad gives a secret that
// is no UUID on the calls that try it as a workload identity (measured on
// Nomad 2.0: GET /v1/agent/self "ACL token not found or invalid workload
// identity: REASON", GET /v1/client/stats "rpc error: REASON", where
// REASON is "failed to parse signed token: …", or for a secret of three
// dot-separated parts that parses, "missing key ID header" or "operation
// cancelled: no such key "KID" in keyring").
//
// The Task API's socket answers such a secret, and a workload identity
// whose allocation is gone, with 500 "Server error authenticating request"
// (measured on Nomad 2.0.6-dev).
var tokenFailures = []string{"ACL token not found", "rpc error: failed to parse signed token",
	"rpc error: missing key ID header", "rpc error: operation cancelled: no such key ",
	"Server error authenticating request"}

// maxRefusalBody bounds how much of a 403 or 500 answer is read to
// explain it.
const maxRefusalBody = 4 << 10

// explainRefusal adds to a 403 answer of Nomad's ACLs (or a 500 for a
// secret that is no token) which call Nomad
// refused (method and path, without the query) and what to check, so
// that every error the agent logs or shows for it says so, whichever of
// its calls it was: "Permission denied; Nomad refused GET /v1/nodes with
// the agent's token: check …" ("… which the agent made without a token"
// when it has none; "… with the agent's token, read from nomad.token_file
// PATH: check nomad.token_file, …" when that file gave it). Nomad's reason comes
// first, once. Other 403 answers (job registration disabled by the
// scheduler configuration) and other 500s are left as they are.
func explainRefusal(req *http.Request, resp *http.Response, tokenFile string) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRefusalBody))
	rest := resp.Body
	plain := b
	if resp.Header.Get("Content-Encoding") == "gzip" {
		// Nomad compresses its answers, refusals included, for a client
		// that accepts it, as nomad/api does.
		plain = nil
		if zr, zerr := gzip.NewReader(bytes.NewReader(b)); zerr == nil {
			plain, _ = io.ReadAll(io.LimitReader(zr, maxRefusalBody))
		}
	}
	reason := strings.TrimSpace(string(plain))
	known := aclRefusals
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		known = taskAPIRefusals
	case http.StatusInternalServerError:
		known = tokenFailures
	}
	acl := false
	for _, r := range known {
		acl = acl || strings.HasPrefix(reason, r)
	}
	if err != nil || !acl {
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(b), rest), rest}
		return
	}
	text := fmt.Sprintf("%s%s%s %s with the agent's token: check nomad.token or NOMAD_TOKEN, "+
		"and that its ACL policy grants what deploy/foreshape-acl.hcl does", reason, refusedCall, req.Method, req.URL.Path)
	switch {
	case tokenFile != "":
		// A workload identity's token carries the policies attached to
		// its job, not a token's own.
		text = fmt.Sprintf("%s%s%s %s with the agent's token, read from nomad.token_file %s: check nomad.token_file, "+
			"and that the ACL policy of that token (for a workload identity, the policy attached to the agent's job) "+
			"grants what deploy/foreshape-acl.hcl does", reason, refusedCall, req.Method, req.URL.Path, tokenFile)
	case req.Header.Get("X-Nomad-Token") == "" && req.Header.Get("Authorization") == "":
		text = fmt.Sprintf("%s%s%s %s, which the agent made without a token: set nomad.token or NOMAD_TOKEN "+
			"(or nomad.token_file) to a token whose ACL policy grants what deploy/foreshape-acl.hcl does", reason, refusedCall, req.Method, req.URL.Path)
	}
	resp.Body = readCloser{strings.NewReader(text), rest}
	resp.ContentLength = int64(len(text))
	resp.Header.Del("Content-Length")
	resp.Header.Del("Content-Encoding")
}

// refusedCall introduces the call in explainRefusal's text.
const refusedCall = "; Nomad refused "

// NomadRefused reports whether err is, or wraps, Nomad's ACL refusal of a
// call the agent made, as the agent's Nomad transport explains it (a 403,
// a 500 for a secret that is no token, or the Task API's 401 for none,
// naming the refused call): the
// agent's token, not the request that led to the call, is at fault.
func NomadRefused(err error) bool {
	var ue nomadapi.UnexpectedResponseError
	if !errors.As(err, &ue) {
		return false
	}
	switch ue.StatusCode() {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusInternalServerError:
		return strings.Contains(ue.Body(), refusedCall)
	}
	return false
}

// readCloser reads from r and closes c.
type readCloser struct {
	io.Reader
	c io.Closer
}

func (r readCloser) Close() error { return r.c.Close() }

// limit is how long req may take.
func (b boundedTransport) limit(req *http.Request) time.Duration {
	q := req.URL.Query()
	if !q.Has("index") {
		return b.timeout
	}
	var asked time.Duration // none: Nomad's default (blocking.Wait)
	if w := q.Get("wait"); w != "" {
		// nomad/api writes the wait as milliseconds ("60000ms"); a bare
		// number is seconds to Nomad.
		if !strings.ContainsAny(w, "hmsµn") {
			w += "s"
		}
		if d, err := time.ParseDuration(w); err == nil {
			asked = d
		}
	}
	wait := blocking.Wait(asked)
	return b.timeout + wait + wait/16
}

// cancelOnClose releases a request's deadline once its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
