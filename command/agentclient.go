package command

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// clientFlags are the flags of every command that talks to an agent.
type clientFlags struct {
	address string
	token   string
	json    bool
	// TLS to an agent with a tls block: the CA that signed its
	// certificate, and the client certificate verify_incoming asks for.
	caCert, clientCert, clientKey string
}

const clientFlagsHelp = `
  -address=ADDR  The agent's HTTP API address: a URL, or HOST:PORT, or a
                 HOST alone for port 7575. Default: $FORESHAPE_ADDR or
                 http://127.0.0.1:7575.
  -token=TOKEN   The API token, when the agent has acl { enabled = true }.
                 Default: $FORESHAPE_TOKEN.
  -json          Print the agent's answer as JSON instead of a table.
  -ca-cert=FILE  The CA that signed the agent's certificate (an https://
                 address). Default: $FORESHAPE_CACERT.
  -client-cert=FILE, -client-key=FILE
                 The client certificate and key an agent with
                 tls.verify_incoming asks for. Default:
                 $FORESHAPE_CLIENT_CERT, $FORESHAPE_CLIENT_KEY.`

// jsonFlagHelp is -json's line of clientFlagsHelp.
const jsonFlagHelp = `
  -json          Print the agent's answer as JSON instead of a table.`

// clientFlagsHelpWithoutJSON is clientFlagsHelp for a command whose agent
// answers nothing to print as JSON (registerWithoutJSON).
var clientFlagsHelpWithoutJSON = strings.Replace(clientFlagsHelp, jsonFlagHelp, "", 1)

func (c *clientFlags) register(fs *flag.FlagSet) {
	c.registerWithoutJSON(fs)
	fs.BoolVar(&c.json, "json", false, "print JSON")
}

// registerWithoutJSON registers the client flags but -json.
func (c *clientFlags) registerWithoutJSON(fs *flag.FlagSet) {
	addr := os.Getenv("FORESHAPE_ADDR")
	if addr == "" {
		addr = api.DefaultAddress
	}
	c.address = addr
	fs.Var(&envFlag{name: "address", env: "FORESHAPE_ADDR", value: &c.address, check: checkAddress}, "address", "agent HTTP API address")
	c.token = os.Getenv("FORESHAPE_TOKEN")
	fs.Var(&envFlag{name: "token", env: "FORESHAPE_TOKEN", value: &c.token, check: checkToken, secret: true}, "token", "API token")
	fs.StringVar(&c.caCert, "ca-cert", os.Getenv("FORESHAPE_CACERT"), "CA certificate")
	fs.StringVar(&c.clientCert, "client-cert", os.Getenv("FORESHAPE_CLIENT_CERT"), "client certificate")
	fs.StringVar(&c.clientKey, "client-key", os.Getenv("FORESHAPE_CLIENT_KEY"), "client key")
}

// withDefaultPort gives an address written without a scheme and without a
// port ("127.0.0.1", "agent-1") the agent's default port, 7575, as the
// agent listens there: without it the request went to port 80. A URL
// with a scheme is taken as written (https://foreshape.example.com may be
// a proxy on 443).
func withDefaultPort(addr string) string {
	if addr == "" || strings.Contains(addr, "://") || strings.Contains(addr, "/") {
		return addr
	}
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), "7575")
}

// checkAddress refuses an -address the client could not send a request
// to: empty, a scheme other than http or https, no host, or a port that is
// not 1–65535 (each answered as a failed request, exit 1, before).
func checkAddress(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("empty: give the agent's address, such as 127.0.0.1:7575")
	}
	raw := withDefaultPort(v)
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not an address: %w", v, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: the scheme must be http or https, not %q", v, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%q names no host", v)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: the port must be 1 to 65535, not %s", v, p)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("%q has an empty port", v)
	}
	return nil
}

// envFlag is a string flag whose default comes from an environment
// variable. The flag package checks only what the command line gives:
// Meta.Parse calls checkParsed once it is parsed, so that a bad
// FORESHAPE_ADDR is a usage error naming the variable, as a bad -address
// is one naming the flag (it was sent as it stood, and failed as a
// request), and is not looked at when -address overrides it.
type envFlag struct {
	name, env string
	value     *string
	check     func(string) error
	// secret values (the token) are checked by checkParsed alone, whose
	// errors never hold them: the flag package's error would quote it.
	secret bool
	// set is true once the command line gave the flag.
	set bool
}

func (f *envFlag) String() string {
	if f == nil || f.value == nil || f.secret {
		return ""
	}
	return *f.value
}

func (f *envFlag) Set(v string) error {
	if !f.secret {
		if err := f.check(v); err != nil {
			return err
		}
	}
	*f.value, f.set = v, true
	return nil
}

// checkParsed checks the value Set did not, naming the flag or the
// variable it came from.
func (f *envFlag) checkParsed() error {
	if f.set && !f.secret {
		return nil
	}
	err := f.check(*f.value)
	switch {
	case err == nil:
		return nil
	case f.set:
		return fmt.Errorf("-%s: %w", f.name, err)
	}
	return fmt.Errorf("%s: %w", f.env, err)
}

// checkToken refuses a token no HTTP header can carry: one with a control
// character (a tab aside) within it once the white space around it is
// trimmed, as client sends it, such as the newline between two lines of a
// file. net/http refused it as "invalid header field value", naming
// neither the token's source nor the fix. Its error never holds the token.
func checkToken(v string) error {
	t := strings.TrimSpace(v)
	for i := 0; i < len(t); i++ {
		if b := t[i]; (b < ' ' && b != '\t') || b == 0x7f {
			return fmt.Errorf("the token holds a control character (0x%02x, its byte %d), which no HTTP header can carry: set it to the token alone, on one line", b, i+1)
		}
	}
	return nil
}

func (c *clientFlags) client() *api.Client {
	// The agent trims the lines of its token file; a token pasted with
	// a newline would otherwise not even make a valid header.
	cl := &api.Client{Address: withDefaultPort(c.address), Token: strings.TrimSpace(c.token)}
	if c.caCert == "" && c.clientCert == "" && c.clientKey == "" {
		return cl
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	var err error
	if c.caCert != "" {
		var pem []byte
		if pem, err = os.ReadFile(c.caCert); err != nil {
			err = fmt.Errorf("-ca-cert %s: %w", c.caCert, unwrapPath(err))
		} else {
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				err = fmt.Errorf("-ca-cert %s holds no PEM certificate", c.caCert)
			}
		}
	}
	switch {
	case err != nil:
	case c.clientCert != "" && c.clientKey == "":
		err = errors.New("-client-cert is set without -client-key (or FORESHAPE_CLIENT_KEY); they come together")
	case c.clientKey != "" && c.clientCert == "":
		err = errors.New("-client-key is set without -client-cert (or FORESHAPE_CLIENT_CERT); they come together")
	case c.clientCert != "":
		var cert tls.Certificate
		if cert, err = tls.LoadX509KeyPair(c.clientCert, c.clientKey); err != nil {
			err = fmt.Errorf("-client-cert and -client-key: %w", err)
		} else {
			tc.Certificates = []tls.Certificate{cert}
		}
	}
	if err != nil {
		cl.HTTP = &http.Client{Transport: failingTransport{err}}
		return cl
	}
	// Go's default transport with these TLS settings: its proxy from the
	// environment, HTTP/2, and its dial and handshake bounds, which hold
	// under a blocking query's longer timeout too.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	cl.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	return cl
}

// warnNoLeader warns on stderr that the agent answered a read from its own
// copy of the state while it knew no leader (api.QueryMeta.NoLeader): the
// answer may be out of date. Standard output and the exit code are the
// same either way.
func (m *Meta) warnNoLeader(cf *clientFlags, qm api.QueryMeta) {
	if qm.NoLeader {
		m.UI.Warn(noLeaderWarning(cf))
	}
}

func noLeaderWarning(cf *clientFlags) string {
	return fmt.Sprintf("warning: the agent at %s knows no leader: this answer is its own copy of the state, which may be out of date; 'foreshape status' on it says why",
		withDefaultPort(cf.address))
}

// failingTransport fails every request with err: the client flags could
// not be used.
type failingTransport struct{ err error }

func (f failingTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, f.err }

// printJSON writes v indented to the command's standard output.
func (m *Meta) printJSON(v any) int {
	enc := json.NewEncoder(m.Out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		m.UI.Error(fmt.Sprintf("error: %v", err))
		return ExitInvalid
	}
	return ExitOK
}

// table returns a tab writer over standard output; call Flush when done.
func (m *Meta) table() *tabwriter.Writer {
	return tabwriter.NewWriter(m.Out, 0, 4, 2, ' ', 0)
}

// apiError prints an error from the agent's API, with what to do about
// it where that is clear, and returns ExitInvalid.
func (m *Meta) apiError(err error) int {
	// The error may quote what the agent was sent or holds (a job name,
	// a reason), or be another server's page: its newlines stay.
	msg := "error: " + printable(err.Error(), "\n")
	if hint := apiErrorHint(err); hint != "" {
		msg += "\n" + hint
	}
	m.UI.Error(msg)
	return ExitInvalid
}

// writeError is apiError for a command that asks the agent to change
// something: when the answer was lost after the request went out
// (lostAnswer), the agent may have made the change, and maybe is what to
// say then ("The agent may have queued it …": what it may have done and
// how to see whether it did). An error alone read as "nothing happened".
func (m *Meta) writeError(err error, maybe string) int {
	if !lostAnswer(err) {
		return m.apiError(err)
	}
	m.UI.Error("error: " + printable(err.Error(), "\n") + "\n" + maybe)
	return ExitInvalid
}

// lostAnswer reports whether err leaves open whether the agent carried the
// request out: the request went out and its answer was lost (the client's
// timeout, a connection closed or reset before the answer), or a follower
// answered 502 "forwarding to the leader at …" for an answer it lost the
// same way. Not a connection that was never made (refused, a failed dial
// or handshake): nothing was sent.
func lostAnswer(err error) bool {
	var se *api.StatusError
	if errors.As(err, &se) {
		return se.Code == http.StatusBadGateway && strings.HasPrefix(se.Message, "forwarding to the leader at ") &&
			!strings.Contains(se.Message, ": dial ") && !strings.Contains(se.Message, "connection refused")
	}
	var ue *url.Error
	var op *net.OpError
	switch {
	case !errors.As(err, &ue), errors.As(err, &op) && op.Op == "dial", errors.Is(err, syscall.ECONNREFUSED):
		return false
	}
	return ue.Timeout() || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// apiErrorHint says what to do about a refused token (the agent's, or
// Nomad's refusal of the agent's own: a 502 that says Nomad refused) or an
// address where nothing listens; "" for other errors (another 502: a
// client agent that could not reach the leader).
func apiErrorHint(err error) string {
	var se *api.StatusError
	var ue *url.Error
	var unknownCA x509.UnknownAuthorityError
	switch {
	case errors.As(err, &se) && se.Code == http.StatusForbidden && strings.Contains(se.Message, api.DeniedNoClientCert):
		return "The agent requires a client certificate (tls.verify_incoming): set -client-cert and -client-key (or " +
			"FORESHAPE_CLIENT_CERT and FORESHAPE_CLIENT_KEY) to a certificate and its key signed by the agent's CA."
	case errors.As(err, &unknownCA):
		return "This command does not trust the CA that signed the agent's certificate: set -ca-cert (or FORESHAPE_CACERT) to the agent's tls.ca_file."
	case errors.As(err, &se) && se.Code == http.StatusForbidden && strings.Contains(se.Message, api.DeniedUnknownToken):
		return "The agent did not accept the token from -token (or FORESHAPE_TOKEN): use one of the tokens in its acl.token_file (the agent re-reads that file on SIGHUP)."
	case errors.As(err, &se) && se.Code == http.StatusForbidden:
		return "The agent has ACLs on: set -token, or FORESHAPE_TOKEN, to one of the tokens in the agent's acl.token_file."
	case errors.As(err, &se) && se.Code == http.StatusBadGateway && strings.Contains(se.Message, "Nomad refused"):
		return "Nomad refused the agent's own Nomad token (its nomad.token, NOMAD_TOKEN or nomad.token_file), not this command's: " +
			"give that token (for a workload identity, the agent's job) a policy granting what deploy/foreshape-acl.hcl does. The request changed nothing."
	case errors.Is(err, syscall.ECONNREFUSED) && errors.As(err, &ue):
		host := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Host
		}
		return fmt.Sprintf("Is the agent running? no agent answers at %s (set -address or FORESHAPE_ADDR).", host)
	}
	return ""
}
