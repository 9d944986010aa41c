package config

import (
	"fmt"
	"net"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/foreshape/foreshape/policies/hclfield"
)

// The checks below validate one setting alone, wherever it came from (a
// file or the environment). Each returns the normalised value or an error
// worded to follow "Invalid <field>: ".

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

func checkName(s string) (string, error) {
	if !nameRE.MatchString(s) {
		return "", fmt.Errorf("%q must start with a letter or digit and hold only letters, digits, '-', '_' or '.' (at most 63)", s)
	}
	return s, nil
}

func checkPath(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("the path must not be empty")
	}
	if strings.ContainsRune(s, 0) {
		return "", fmt.Errorf("the path contains a NUL byte")
	}
	return s, nil
}

// checkDataDir allows an empty value: it means in-memory, which Validate
// accepts only in dev mode.
func checkDataDir(s string) (string, error) {
	if s == "" {
		return s, nil
	}
	return checkPath(s)
}

func checkIP(s string) (string, error) {
	if net.ParseIP(s) == nil {
		return "", fmt.Errorf("%q is not an IP address; bind_addr takes an address such as \"0.0.0.0\" or \"10.0.0.5\", not a host name", s)
	}
	return s, nil
}

// checkAdvertise accepts an IP address other agents can dial.
func checkAdvertise(s string) (string, error) {
	ip := net.ParseIP(s)
	if ip == nil {
		return "", fmt.Errorf("%q is not an IP address; advertise_addr takes the address other agents reach this one at, such as \"10.0.0.5\"", s)
	}
	if ip.IsUnspecified() {
		return "", fmt.Errorf("%q is not an address anyone can dial; advertise_addr takes this host's own address, such as \"10.0.0.5\"", s)
	}
	return s, nil
}

func checkLogLevel(s string) (string, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	for _, v := range LogLevels {
		if l == v {
			return l, nil
		}
	}
	return "", fmt.Errorf("%q is not one of %s", s, quoteAll(LogLevels))
}

func checkPort(p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("%d is outside the port range 1-65535", p)
	}
	return nil
}

func checkBootstrapExpect(n int) error {
	if n < 1 {
		return fmt.Errorf("%d is below 1: at least one voter must bootstrap the cluster", n)
	}
	if n > 9 {
		return fmt.Errorf("%d voters is more than Raft clusters should have (use 3 or 5)", n)
	}
	return nil
}

func checkVoters(n int) error {
	if n != 1 && n != 3 && n != 5 {
		return fmt.Errorf("%d: keep 1, 3 or 5 voters (an odd number, so that a majority survives one or two failures)", n)
	}
	return nil
}

// checkRaftEntries accepts a count of Raft log entries for
// raft_snapshot_threshold and raft_trailing_logs.
func checkRaftEntries(n int) error {
	if n < 1 || n > MaxRaftLogEntries {
		return fmt.Errorf("%d entries is outside 1-%d (raft.db keeps about this many entries, each up to a sample batch of hundreds of kilobytes)", n, MaxRaftLogEntries)
	}
	return nil
}

func checkSnapshotInterval(d time.Duration) error {
	if d < MinRaftSnapshotInterval || d > MaxRaftSnapshotInterval {
		return fmt.Errorf("%s is outside %s-%s: the server checks whether to snapshot every interval (to twice that)", hclfield.FormatDuration(d), hclfield.FormatDuration(MinRaftSnapshotInterval), hclfield.FormatDuration(MaxRaftSnapshotInterval))
	}
	return nil
}

func checkKeepFinished(d time.Duration) error {
	if d < MinKeepFinished || d > MaxKeepFinished {
		return fmt.Errorf("%s is outside %s-%s: a finished request stays in the queue at least this long", hclfield.FormatDuration(d), hclfield.FormatDuration(MinKeepFinished), hclfield.FormatDuration(MaxKeepFinished))
	}
	return nil
}

// checkSilence bounds how long a server may be silent before the leader
// acts on it: at least a second, raft's heartbeat timeout, which a server
// that is well may go without contact in an ordinary election.
func checkSilence(d time.Duration) error {
	if d < time.Second {
		return fmt.Errorf("%s is shorter than 1s: a server that is well may go that long without contact in an ordinary election", hclfield.FormatDuration(d))
	}
	return nil
}

// checkHost accepts an IP address or a DNS host name.
func checkHost(h string) error {
	if h == "" {
		return fmt.Errorf("the host is empty")
	}
	if net.ParseIP(h) != nil {
		return nil
	}
	if len(h) > 253 {
		return fmt.Errorf("the host name %q is too long", h)
	}
	labels := strings.Split(strings.TrimSuffix(h, "."), ".")
	if last := labels[len(labels)-1]; last != "" && strings.Trim(last, "0123456789") == "" {
		// No top-level domain is all digits (RFC 3696), so this was meant
		// as an address, and is not one.
		return fmt.Errorf("%q is not an IP address (an IPv4 address is four numbers of 0-255) nor a host name", h)
	}
	for _, label := range labels {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return fmt.Errorf("%q is not a valid host name", h)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("%q is not a valid host name", h)
			}
		}
	}
	return nil
}

// checkListen accepts HOST:PORT to listen on (http.address).
func checkListen(s string) (string, error) {
	if host, _, err := net.SplitHostPort(s); err == nil && host == "" {
		return "", fmt.Errorf("%q has no host; use 0.0.0.0 to listen on every interface", s)
	}
	return checkHostPort(s)
}

// checkHostPort accepts HOST:PORT.
func checkHostPort(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q is not HOST:PORT: %s", s, strings.TrimPrefix(err.Error(), "address "+s+": "))
	}
	if host == "" {
		return "", fmt.Errorf("%q has no host; name the host to reach, such as 127.0.0.1", s)
	}
	if err := checkHost(host); err != nil {
		return "", err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", fmt.Errorf("%q has a non-numeric port %q", s, port)
	}
	if err := checkPort(p); err != nil {
		return "", fmt.Errorf("%q: %s", s, err)
	}
	return s, nil
}

// checkJoin accepts HOST, HOST:PORT or a provider lookup
// ("provider=consul service=NAME").
func checkJoin(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("an empty peer address")
	}
	if strings.Contains(s, "provider=") {
		if _, err := ParseJoinProvider(s); err != nil {
			return "", err
		}
		return s, nil
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		return checkHostPort(s)
	}
	if err := checkHost(strings.Trim(s, "[]")); err != nil {
		return "", err
	}
	return s, nil
}

// checkHTTPURL accepts an absolute http or https URL with a host.
func checkHTTPURL(raw string) (string, error) {
	s := RedactURL(raw) // for the messages
	if !strings.Contains(raw, "://") {
		return "", fmt.Errorf("%q has no scheme; write it as http://HOST:PORT or https://HOST:PORT", s)
	}
	u, err := url.Parse(raw)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			return "", fmt.Errorf("%q is not a valid URL: %s", s, RedactURL(ue.Err.Error()))
		}
		return "", fmt.Errorf("%q is not a valid URL: %s", s, RedactURL(err.Error()))
	}
	if u.User != nil {
		// The HTTP clients would send it as basic auth, and the address
		// is printed (the start banner, config show, logs).
		return "", fmt.Errorf("%q holds credentials (USER:PASSWORD@): foreshape sends no HTTP basic auth of its own and prints addresses; "+
			"use the service's token setting (nomad.token, consul.token), or a proxy that adds the credentials", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q must start with http:// or https://", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q has no host", s)
	}
	if err := checkHost(u.Hostname()); err != nil {
		return "", err
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || checkPort(n) != nil {
			return "", fmt.Errorf("%q has an invalid port %q", s, p)
		}
	}
	return raw, nil
}

// checkPrometheusAddress accepts an http or https URL, as checkHTTPURL,
// whose credentials, if it holds any, belong in prometheus.username and
// prometheus.password_file.
func checkPrometheusAddress(raw string) (string, error) {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return "", fmt.Errorf("%q holds credentials (USER:PASSWORD@), and addresses are printed (the start banner, config show, logs): "+
			"set prometheus.username and prometheus.password_file for basic auth, or prometheus.token_file for a bearer token", RedactURL(raw))
	}
	return checkHTTPURL(raw)
}

// checkUsername accepts a user name for HTTP basic auth: RFC 7617 leaves
// no room for a colon in it, and a control character would break the
// header.
func checkUsername(s string) (string, error) {
	switch {
	case s == "":
		return "", fmt.Errorf("the user name is empty")
	case strings.Contains(s, ":"):
		return "", fmt.Errorf("%q holds a colon, which basic auth cannot carry in a user name", s)
	case strings.IndexFunc(s, func(r rune) bool { return r < 32 || r == 127 }) >= 0:
		return "", fmt.Errorf("%q holds a control character", s)
	}
	return s, nil
}

// ownHeaders are the headers the agent's HTTP client sets on a request to
// Prometheus itself, and why; prometheus.headers refuses them.
var ownHeaders = map[string]string{
	"Authorization":       "it is sent from prometheus.token_file (a bearer token) or prometheus.username and prometheus.password_file (basic auth), which keep the credential out of this file and are read again for every request: set those instead",
	"Proxy-Authorization": "Go's HTTP client sends it to a proxy (HTTPS_PROXY's USER:PASSWORD@), not to Prometheus",
	"Host":                "it is prometheus.address's host (prometheus.tls_server_name is the name its certificate is checked for)",
}

// clientHeaders are set by Go's HTTP client for each request (the query's
// form encoding, its length, compression, the connection).
var clientHeaders = []string{"Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding", "Accept-Encoding",
	"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Expect"}

// checkHeader accepts a header to send with every request to Prometheus:
// an HTTP field name (RFC 9110) that the agent does not set itself, and
// a value without a line break. Its errors never quote the value.
func checkHeader(name, value string) error {
	if name == "" || strings.IndexFunc(name, func(r rune) bool { return r > 126 || r <= 32 || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) }) >= 0 {
		return fmt.Errorf("%q is not an HTTP header name", name)
	}
	canon := textproto.CanonicalMIMEHeaderKey(name)
	if why := ownHeaders[canon]; why != "" {
		return fmt.Errorf("%q is a header foreshape sets itself: %s", name, why)
	}
	if slices.Contains(clientHeaders, canon) {
		return fmt.Errorf("%q is a header foreshape sets itself: its HTTP client sets it for each request (the query's encoding, its length and compression, the connection)", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("the value of header %q holds a line break or a NUL byte", name)
	}
	return nil
}

// checkNomadAddress accepts an http(s) URL or a unix:// socket path, as
// Nomad's API client does.
func checkNomadAddress(s string) (string, error) {
	if strings.HasPrefix(s, "unix://") {
		return checkUnixSocket(s)
	}
	if !strings.Contains(s, "://") {
		return "", fmt.Errorf("%q has no scheme; write it as http://HOST:PORT, https://HOST:PORT or unix://PATH (a socket, such as Nomad's Task API)", RedactURL(s))
	}
	if badScheme(s) {
		return "", fmt.Errorf("%q must start with http://, https:// or unix://", RedactURL(s))
	}
	return checkHTTPURL(s)
}

// badScheme reports whether s parses as a URL whose scheme is neither
// http nor https: the callers that also take unix:// say so themselves.
func badScheme(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "http" && u.Scheme != "https"
}

// checkUnixSocket accepts unix://PATH with a path.
func checkUnixSocket(s string) (string, error) {
	if len(s) == len("unix://") {
		return "", fmt.Errorf("%q names no socket path", s)
	}
	return s, nil
}

// checkConsulAddress accepts HOST:PORT, an http(s) URL or a unix://
// socket path, as CONSUL_HTTP_ADDR does.
func checkConsulAddress(s string) (string, error) {
	if strings.HasPrefix(s, "unix://") {
		return checkUnixSocket(s)
	}
	if strings.Contains(s, "://") {
		if badScheme(s) {
			return "", fmt.Errorf("%q must be HOST:PORT or start with http://, https:// or unix://", RedactURL(s))
		}
		return checkHTTPURL(s)
	}
	return checkHostPort(s)
}

func checkIdent(s string) (string, error) {
	if s == "" || strings.ContainsAny(s, " \t\r\n/") {
		return "", fmt.Errorf("%q must be non-empty and hold no whitespace or '/'", s)
	}
	return s, nil
}

var nodeIDRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// checkNodeID accepts a Nomad node's ID, a UUID: Nomad looks a node up by
// its whole ID, so a name or a prefix fails every report.
func checkNodeID(s string) (string, error) {
	if !nodeIDRE.MatchString(s) {
		return "", fmt.Errorf("%q is not a Nomad node ID: the node's whole ID, a UUID such as \"9e3f1c0a-5b2d-4c1e-8f00-1a2b3c4d5e6f\" (nomad node status -verbose shows it), not its name or a prefix", s)
	}
	return s, nil
}

func checkServerName(s string) (string, error) {
	if err := checkHost(s); err != nil {
		return "", err
	}
	return s, nil
}

var serviceRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func checkServiceName(s string) (string, error) {
	if !serviceRE.MatchString(s) {
		return "", fmt.Errorf("%q is not a DNS-compatible service name (lower-case letters, digits and '-', at most 63)", s)
	}
	return s, nil
}

// ConsulMetricsSuffix makes the name of the Consul service Prometheus
// finds the agents through from consul.service_name: foreshape-metrics by
// default (agent/consul.go).
const ConsulMetricsSuffix = "-metrics"

// ConsulRoleTags are the tags an agent gives its Consul services for its
// role, and keeps current as the role changes, and server, its kind in the
// NAME-metrics service beside client (agent/consul.go).
var ConsulRoleTags = []string{"leader", "follower", "client", "server"}

func checkTag(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("a tag is empty")
	}
	for _, r := range ConsulRoleTags {
		// Compared without regard to case, as DNS names are.
		if strings.EqualFold(s, r) {
			return "", fmt.Errorf("%q is a role tag, which the agent adds itself (%s, whichever it is now): "+
				"set here, every agent would carry it whatever its role, a follower listed as leader, a client as a server. Use another tag", s, strings.Join(ConsulRoleTags, ", "))
		}
	}
	return s, nil
}

func checkToken(s string) (string, error) {
	if strings.ContainsAny(s, " \t\r\n") {
		return "", fmt.Errorf("the token contains whitespace")
	}
	return s, nil
}

func quoteAll(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// JoinProvider is a retry_join entry that looks servers up instead of
// naming them: "provider=consul [service=NAME]".
type JoinProvider struct {
	// Provider is "consul", the only one supported.
	Provider string
	// Service is the Consul service to look up; empty means
	// consul.service_name.
	Service string
}

// ParseJoinProvider parses a retry_join entry of the form
// "provider=consul service=NAME" (key=value pairs separated by spaces).
func ParseJoinProvider(s string) (JoinProvider, error) {
	var p JoinProvider
	for _, kv := range strings.Fields(s) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return p, fmt.Errorf("%q: %q is not KEY=VALUE (write \"provider=consul service=foreshape\")", s, kv)
		}
		switch k {
		case "provider":
			if v != "consul" {
				return p, fmt.Errorf("%q: provider %q is not supported; only provider=consul looks servers up (in Consul's catalog)", s, v)
			}
			p.Provider = v
		case "service":
			if _, err := checkServiceName(v); err != nil {
				return p, fmt.Errorf("%q: service: %v", s, err)
			}
			p.Service = v
		default:
			return p, fmt.Errorf("%q: unknown key %q; provider=consul takes only service=NAME", s, k)
		}
	}
	if p.Provider == "" {
		return p, fmt.Errorf("%q names no provider", s)
	}
	return p, nil
}
