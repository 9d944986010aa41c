// Package preflight is what a foreshape agent checks before it starts,
// beyond its configuration's own rules (config.Validate, which Check runs
// first): the policies in policies.dir and what they need of the agent (a
// Prometheus source for their queries, room in the series store, a runtime
// for their scale targets), the files the configuration names (the ACL
// token file, the TLS certificate, key and CA, Nomad's and Prometheus's TLS
// files, Prometheus's token or password file, the node ID in data_dir), a
// server's data_dir (a directory it may create or write to, not on one of
// the kernel's file systems, and the peers file an operator wrote there to
// recover a lost quorum, when the server would refuse it at its start),
// and the Nomad, Consul and Prometheus clients' settings built from it.
//
// The agent starts (and reloads) from what Check returns, so it runs with
// exactly what was checked; `foreshape config validate` runs the same
// Check, and `foreshape policy validate` its policy part (Policies), so
// they refuse exactly what the agent would, with the same messages. Every
// problem is an hcl.Diagnostic pointing at the setting or policy attribute
// it is about.
//
// It must never bind a port, open the Raft store, create or write a file,
// or contact Nomad, Consul, Prometheus or another agent: it runs beside a
// running agent and on machines that only check files. What only those
// can tell (a port in use, a Raft store held by another process, a Nomad
// that does not answer) the agent finds when it starts.
package preflight

import (
	"cmp"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/hcl/v2"
	nomadapi "github.com/hashicorp/nomad/api"
	"golang.org/x/sys/unix"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/config"
	promsource "github.com/foreshape/foreshape/plugins/source/prometheus"

	// The built-in scale targets: their settings in policies, and their
	// runtimes.
	_ "github.com/foreshape/foreshape/plugins/target/builtin"
	"github.com/foreshape/foreshape/policies"
)

// Options are what the agent starts with besides its configuration.
type Options struct {
	// Policies, when not nil, are the policies instead of policies.dir's
	// (dev mode, a replay).
	Policies []*policies.Policy
	// Sources says the agent's metric sources are given (a replay of
	// recorded series): it builds no Nomad client and acts on nothing, and
	// policies' queries read from those sources.
	Sources bool
	// MaxSeries bounds the series the leader stores; zero means
	// collect.DefaultMaxSeries.
	MaxSeries int
	// Now, when set, is the wall time a schedule that can never start or
	// run again is warned of against (zero: not checked; the agent's data
	// time is not the wall's in dev mode or a replay).
	Now time.Time
	// NomadTimeout bounds each Nomad API call that is not a blocking query
	// (a blocking query gets its wait on top); zero means
	// DefaultNomadTimeout.
	NomadTimeout time.Duration
}

// Start is what an agent starts from. Check fills it only as far as the
// checks passed; use it only when Check returned no error.
type Start struct {
	// Name is the agent's name (a server's or a client agent's): name, or
	// else the host name.
	Name string
	// Policies are a server's policies: Options.Policies, or policies.dir's.
	Policies []*policies.Policy
	// Files are the policy files read, for printing diagnostics with their
	// source.
	Files map[string]*hcl.File
	// Tokens are the API tokens of acl.token_file; empty without ACLs.
	Tokens []string
	// ReadTokens are acl.read_token_file's, which may only read.
	ReadTokens []string
	// TLS is the agent's certificate and, with tls.ca_file, the CAs its
	// peers' and clients' certificates are checked against; nil without TLS.
	TLS *cluster.TLS
	// Nomad is the agent's Nomad API client; nil with Options.Sources.
	Nomad *nomadapi.Client
	// Consul is the Consul API client, for registration and
	// provider=consul joins; nil when neither is configured.
	Consul *consulapi.Client
	// Prometheus is how a server's Prometheus source reaches
	// prometheus.address (its TLS, credentials and headers; the agent adds
	// the queries); nil without one, and in a replay.
	Prometheus *promsource.Config
	// Read are the SHA-256 digests of the files read for the settings that
	// name them and take effect at a start (tls.*, nomad.*, prometheus's
	// ca_file, cert_file and key_file), by setting: a reload tells a file
	// changed in place, which only a restart reads again. acl.token_file,
	// read at every reload, and prometheus.token_file and password_file
	// and nomad.token_file, read at every request, are not among them.
	Read map[string][sha256.Size]byte
}

// ClusterTLS is the mutual TLS of the Raft port and of agents' calls to
// each other: on when the tls block has a certificate and a CA.
func (s *Start) ClusterTLS() *cluster.TLS {
	if s.TLS == nil || s.TLS.CAs == nil {
		return nil
	}
	return s.TLS
}

// Error is a refused start: Check's diagnostics, at least one an error.
type Error struct{ Diagnostics hcl.Diagnostics }

// Error lists the error diagnostics, one a line, each with its place.
func (e *Error) Error() string {
	var lines []string
	for _, d := range e.Diagnostics {
		if d.Severity == hcl.DiagError {
			lines = append(lines, d.Error())
		}
	}
	return strings.Join(lines, "\n")
}

// Err returns diags as an *Error when one of them is an error, else nil.
func Err(diags hcl.Diagnostics) error {
	if !diags.HasErrors() {
		return nil
	}
	return &Error{Diagnostics: diags}
}

// Check runs everything the agent checks before it starts with cfg (a
// server's or a client agent's configuration, after files, environment
// and flags): cfg.Validate, then, when that passes, the checks of this
// package's comment. The agent starts only when diags has no error.
func Check(cfg *config.Config, opts Options) (*Start, hcl.Diagnostics) {
	s := &Start{Files: map[string]*hcl.File{}}
	diags := cfg.Validate()
	if diags.HasErrors() {
		return s, diags
	}
	c := &checker{cfg: cfg, read: map[string][sha256.Size]byte{}, now: opts.Now}
	s.Read = c.read
	server := cfg.Server.Enabled
	s.Name = c.name()
	if server {
		c.dataDir()
		s.Policies = c.policies(opts, s.Files)
	}
	s.Tokens = c.tokens()
	s.ReadTokens = c.readTokens(s.Tokens)
	s.TLS = c.tls()
	if !server || !opts.Sources {
		s.Nomad = c.nomad(cmp.Or(opts.NomadTimeout, DefaultNomadTimeout))
	}
	s.Consul = c.consul()
	if server {
		s.Prometheus = c.prometheus(opts)
	}
	if server && s.Policies != nil {
		c.diags = append(c.diags, checkPolicies(cfg, s.Policies, opts, s.Nomad)...)
	}
	return s, append(diags, c.diags...)
}

// checker collects the diagnostics of one Check.
type checker struct {
	cfg   *config.Config
	diags hcl.Diagnostics
	read  map[string][sha256.Size]byte // Start.Read
	now   time.Time                    // Options.Now: zero when not the wall's
}

// add records a problem with the settings fields (the first that a file
// set is pointed at).
func (c *checker) add(sev hcl.DiagnosticSeverity, summary, detail string, fields ...string) {
	c.diags = append(c.diags, c.cfg.At(&hcl.Diagnostic{Severity: sev, Summary: summary, Detail: detail}, fields...))
}

// value is field's value for a message: "/etc/x", or "/etc/x (the
// default policies.dir)" when no file, variable or flag set it.
func (c *checker) value(field, v string) string {
	if c.cfg.Source(field) == "default" {
		return fmt.Sprintf("%s (the default %s)", v, field)
	}
	return v
}

// readFile reads the file that field names, or records why it cannot; a
// file read only at a start is recorded in Start.Read.
func (c *checker) readFile(field, path string) ([]byte, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		c.add(hcl.DiagError, "Cannot read "+field, fmt.Sprintf("%s: %s.", c.value(field, path), reason(err)), field)
		return nil, false
	}
	if field != "acl.token_file" {
		c.read[field] = sha256.Sum256(b)
	}
	return b, true
}

// reason is err without the path an *os.PathError repeats.
func reason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// hostname is os.Hostname; tests replace it.
var hostname = os.Hostname

// name is the agent's name: name, or the host name. Both roles need one
// (a server's names it in the peer table, a client agent's in status's
// client agents and its Consul service), so both refuse to start without.
func (c *checker) name() string {
	if c.cfg.Name != "" {
		return c.cfg.Name
	}
	h, err := hostname()
	if err != nil {
		c.add(hcl.DiagError, "Missing name", fmt.Sprintf("name is not set and the host name is unknown (%v): set name.", err), "name")
	}
	return h
}

// dataDir checks data_dir and the node ID a server keeps there (when
// there is one yet): the agent refuses a data_dir it could not create or
// write to, one it cannot read, a node-id file that holds no node ID, and
// a peers.json it would refuse to recover from.
func (c *checker) dataDir() {
	if c.cfg.DevMode {
		return // state lives in memory
	}
	if detail := writableDir(c.cfg.DataDir); detail != "" {
		c.add(hcl.DiagError, "Cannot use data_dir", detail, "data_dir")
		return
	}
	id, err := cluster.ReadNodeID(c.cfg.DataDir)
	if err != nil {
		var pe *os.PathError
		detail := err.Error() + "."
		if errors.As(err, &pe) {
			detail = fmt.Sprintf("%s: %s.", pe.Path, pe.Err)
		}
		c.add(hcl.DiagError, "Cannot use data_dir", detail, "data_dir")
		return
	}
	// An operator's peers.json, which the server applies when it starts
	// (agent/cluster/recover.go), checked as the server checks it: here,
	// config validate refuses what the server would, and the agent
	// refuses it before it makes its node ID or opens its Raft store. It
	// is only read: the server applies and renames it when it starts.
	if _, _, err := cluster.ReadPeersFile(c.cfg.DataDir, id, raftAddr(c.cfg)); err != nil {
		detail := err.Error()
		var pe *cluster.PeersFileError
		if errors.As(err, &pe) {
			detail = pe.Message()
		}
		c.add(hcl.DiagError, "Invalid peers file in data_dir", detail+".", "data_dir")
	}
}

// raftAddr is the address a server serves Raft at, as its transport
// gives it (cluster.Node's LocalAddr, which a peers file must name it
// at): advertise_addr, else bind_addr, with server.raft_port. Both are IP
// addresses (config refuses a host name) and config.Validate refuses an
// unspecified bind_addr without advertise_addr, so nothing is resolved.
func raftAddr(cfg *config.Config) string {
	ip := net.ParseIP(cmp.Or(cfg.AdvertiseAddr, cfg.BindAddr))
	if ip == nil {
		return "" // not checked
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(cfg.Server.RaftPort))
}

// writableDir says why this process could not keep its state in dir
// ("" when it could): dir, or the nearest of its parents that exists
// (the agent creates the rest), is not a directory it may write to, or is
// on one of the kernel's file systems (/proc, /sys), which keep no files.
// It asks without writing: a disk that is full or fails shows only when
// the agent writes.
func writableDir(dir string) string {
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		switch {
		case (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) && filepath.Dir(p) != p:
			continue
		case err != nil:
			return fmt.Sprintf("%s: %v.", p, err)
		case !fi.IsDir():
			return fmt.Sprintf("%s is not a directory.", p)
		}
		what := "data_dir"
		if p != filepath.Clean(dir) {
			what = "its parent " + p + " (where the agent would create it)"
		}
		// Before the permission check, which root passes there: the
		// agent failed at start creating the directory or its node-id,
		// with an error that named neither the setting nor its file.
		if fsys := kernelFSOf(p); fsys != "" {
			return fmt.Sprintf("%s: %s is on the kernel's %s file system, where no file can be kept (the agent writes its node-id, raft.db and snapshots there); choose a directory on a disk.", dir, what, fsys)
		}
		if err := unix.Access(p, unix.W_OK|unix.X_OK); err != nil {
			return fmt.Sprintf("%s: this user may not write to %s (%v); run as the user the agent runs as, or choose another data_dir.", dir, what, err)
		}
		return ""
	}
}

// defaultPoliciesDir is policies.dir's default, which dev mode does not
// read (a variable for tests).
var defaultPoliciesDir = config.DefaultPoliciesDir

// PoliciesDirUnread reports whether cfg's policies.dir goes unread: a dev
// agent's (or a replay's) left at its default.
func PoliciesDirUnread(cfg *config.Config) bool {
	return cfg.DevMode && cfg.Source("policies.dir") == "default" && filepath.Clean(cfg.Policies.Dir) == filepath.Clean(defaultPoliciesDir)
}

// policies loads a server's policies: opts.Policies, or every *.hcl file
// in policies.dir (whose absence dev mode only warns about). Dev mode (and
// a replay) reads policies.dir only when it was set: its default is where
// a deployed agent's policies are, which a throwaway agent against the
// simulated cluster or a recording is not to run.
func (c *checker) policies(opts Options, files map[string]*hcl.File) []*policies.Policy {
	if opts.Policies != nil {
		return opts.Policies
	}
	dir := c.cfg.Policies.Dir
	if PoliciesDirUnread(c.cfg) {
		// Nobody asked for it: a dev agent runs its demo policies, a
		// replay its directory's.
		return nil
	}
	if _, err := policies.HCLFiles(dir); err != nil {
		sev, detail := hcl.DiagError, fmt.Sprintf("%s: %s.", c.value("policies.dir", dir), reason(err))
		switch {
		case c.cfg.DevMode && opts.Sources:
			sev = hcl.DiagWarning
			detail += " A replay runs without them when its directory holds *.hcl policies."
		case c.cfg.DevMode:
			sev = hcl.DiagWarning
			detail += " Dev mode runs without them ('foreshape agent -dev' runs its built-in demo policies instead)."
		}
		c.add(sev, "Cannot read policies.dir", detail, "policies.dir")
		return nil
	}
	loader := policies.NewLoader()
	pols, diags := loader.LoadDir(dir)
	for _, d := range diags {
		if d.Summary != policies.NoPolicyFiles {
			continue
		}
		// What runs then: a dev agent's demo policies, or, for an agent
		// already running policies, those (Reload refuses to drop them all).
		switch {
		case c.cfg.DevMode && !opts.Sources:
			d.Detail = fmt.Sprintf("%s holds no *.hcl file: 'foreshape agent -dev' runs its built-in demo policies until a reload finds some there.", dir)
		case !c.cfg.DevMode:
			d.Detail = fmt.Sprintf("%s holds no *.hcl file: an agent started so shapes no locality, and a running agent's reload keeps the policies it runs.", dir)
		}
	}
	for name, f := range loader.Files() {
		files[name] = f
	}
	c.diags = append(c.diags, diags...)
	if diags.HasErrors() {
		return nil
	}
	if pols == nil {
		pols = []*policies.Policy{}
	}
	return pols
}

// tokens reads the API tokens acl.token_file holds (none when ACLs are
// off), one a line; '#' starts a comment line.
func (c *checker) tokens() []string {
	a := c.cfg.ACL
	if !a.Enabled {
		return []string{}
	}
	toks, ok := c.tokenFile("acl.token_file", a.TokenFile)
	if ok && len(toks) == 0 {
		c.add(hcl.DiagError, "Invalid acl.token_file",
			fmt.Sprintf("%s holds no token (one a line; '#' starts a comment), so the HTTP API would refuse every request.", a.TokenFile),
			"acl.token_file")
	}
	return toks
}

// readTokens reads the tokens acl.read_token_file holds, which may only
// read; a token also among write (acl.token_file's) is refused, as which
// of the two it is would be unclear.
func (c *checker) readTokens(write []string) []string {
	a := c.cfg.ACL
	if !a.Enabled || a.ReadTokenFile == "" {
		return []string{}
	}
	toks, ok := c.tokenFile("acl.read_token_file", a.ReadTokenFile)
	if !ok {
		return nil
	}
	if len(toks) == 0 {
		c.add(hcl.DiagError, "Invalid acl.read_token_file",
			fmt.Sprintf("%s holds no token (one a line; '#' starts a comment): list the read-only tokens, or remove acl.read_token_file.", a.ReadTokenFile),
			"acl.read_token_file")
	}
	for i, t := range toks {
		if slices.Contains(write, t) {
			c.add(hcl.DiagError, "Invalid acl.read_token_file",
				fmt.Sprintf("token %d of the %d in %s is also in acl.token_file (%s): a token either may write or may only read; remove it from one of them.", i+1, len(toks), a.ReadTokenFile, a.TokenFile),
				"acl.read_token_file")
			return nil
		}
	}
	return toks
}

// tokenFile reads the tokens of a token file, one a line; '#' starts a
// comment line. False when the file cannot be read (said already).
func (c *checker) tokenFile(field, path string) ([]string, bool) {
	b, ok := c.readFile(field, path)
	if !ok {
		return nil, false
	}
	var toks []string
	for _, line := range strings.Split(string(b), "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			toks = append(toks, t)
		}
	}
	return toks, true
}

// tls loads the agent's certificate, its key and the CA bundle.
func (c *checker) tls() *cluster.TLS {
	t := c.cfg.TLS
	if !t.Enabled() {
		return nil
	}
	files, ok := c.tlsFiles("tls", t.CAFile, t.CertFile, t.KeyFile)
	if !ok {
		return nil
	}
	out := &cluster.TLS{}
	if out.Certificate, ok = files.certificate(c); !ok {
		return nil
	}
	if out.CAs, ok = files.cas(c); !ok {
		return nil
	}
	c.certDates(out.Certificate, out.CAs)
	return out
}

// tlsFiles are the PEM files a block's ca_file, cert_file and key_file
// name (those set), as read.
type tlsFiles struct {
	block                     string // "tls", "prometheus"
	caFile, certFile, keyFile string
	ca, cert, key             []byte
}

// tlsFiles reads the files of block's ca_file, cert_file and key_file
// that are set; ok is false when one cannot be read (each is said).
func (c *checker) tlsFiles(block, caFile, certFile, keyFile string) (tlsFiles, bool) {
	f := tlsFiles{block: block, caFile: caFile, certFile: certFile, keyFile: keyFile}
	ok := true
	for _, r := range []struct {
		name, path string
		dst        *[]byte
	}{{"cert_file", certFile, &f.cert}, {"key_file", keyFile, &f.key}, {"ca_file", caFile, &f.ca}} {
		if r.path != "" {
			b, read := c.readFile(block+"."+r.name, r.path)
			*r.dst, ok = b, ok && read
		}
	}
	return f, ok
}

// certificate pairs the certificate and its key, or says why they are
// not a pair.
func (f tlsFiles) certificate(c *checker) (tls.Certificate, bool) {
	cert, err := tls.X509KeyPair(f.cert, f.key)
	if err != nil {
		c.add(hcl.DiagError, "Invalid "+f.block+".cert_file",
			fmt.Sprintf("%s and %s are not a PEM certificate and its key: %v.", f.certFile, f.keyFile, err),
			f.block+".cert_file", f.block+".key_file")
		return tls.Certificate{}, false
	}
	return cert, true
}

// cas is the CA bundle of ca_file (nil when it is not set), or says why
// it holds none.
func (f tlsFiles) cas(c *checker) (*x509.CertPool, bool) {
	if f.caFile == "" {
		return nil, true
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(f.ca) {
		c.add(hcl.DiagError, "Invalid "+f.block+".ca_file", fmt.Sprintf("%s holds no PEM certificate.", f.caFile), f.block+".ca_file")
		return nil, false
	}
	return pool, true
}

// prometheus is how the Prometheus source reaches prometheus.address:
// the TLS its files make (read here, once: a file replaced in place is
// read again at the next start), and the bearer token or basic auth
// password files, each checked here as the source reads it for every
// request (promsource.ReadCredential), and the headers. Nil without
// prometheus.address, or in a replay (opts.Sources), which reads none.
func (c *checker) prometheus(opts Options) *promsource.Config {
	p := c.cfg.Prometheus
	if p.Address == "" || opts.Sources {
		return nil
	}
	out := &promsource.Config{Address: p.Address, TokenFile: p.TokenFile, Username: p.Username, PasswordFile: p.PasswordFile}
	ok := true
	for _, f := range []struct{ field, path string }{{"prometheus.token_file", p.TokenFile}, {"prometheus.password_file", p.PasswordFile}} {
		if f.path == "" {
			continue
		}
		read := promsource.ReadCredential
		if f.field == "prometheus.token_file" {
			read = promsource.ReadToken
		}
		if _, err := read(f.path); err != nil {
			summary := "Cannot read " + f.field
			if ce := (*promsource.CredentialError)(nil); errors.As(err, &ce) {
				summary = "Invalid " + f.field
			}
			c.add(hcl.DiagError, summary, fmt.Sprintf("%s: %s.", f.path, reason(err)), f.field)
			ok = false
		}
	}
	if len(p.Headers) > 0 {
		out.Headers = make(map[string]string, len(p.Headers))
		for k, v := range p.Headers {
			out.Headers[k] = v.Reveal()
		}
	}
	if p.UsesTLS() {
		files, read := c.tlsFiles("prometheus", p.CAFile, p.CertFile, p.KeyFile)
		if !read {
			return nil
		}
		out.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: p.TLSServerName, InsecureSkipVerify: p.SkipVerify}
		if p.CertFile != "" {
			cert, paired := files.certificate(c)
			ok = ok && paired
			out.TLS.Certificates = []tls.Certificate{cert}
			if paired {
				c.certValid(cert, "prometheus", p.CertFile, "a Prometheus that requires a client certificate refuses every query")
			}
		}
		var cas bool
		out.TLS.RootCAs, cas = files.cas(c)
		ok = ok && cas
		out.CAFile = p.CAFile
	}
	if !ok {
		return nil
	}
	return out
}

// certDates warns of a certificate outside its validity at c.now (not
// checked without it), and of one no CA of the bundle cas signed: every client
// and peer that verifies it refuses it, but a warning, not an error, so a
// rotation under way (a bundle holding the next CA first) does not stop a
// restart.
func (c *checker) certDates(cert tls.Certificate, cas *x509.CertPool) {
	t := c.cfg.TLS
	if !c.certValid(cert, "tls", t.CertFile, "every client and peer that verifies it refuses the agent's connections") {
		return
	}
	leaf := cert.Leaf
	if cas == nil {
		return
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if ic, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(ic)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: cas, Intermediates: inter, CurrentTime: c.now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		c.add(hcl.DiagWarning, "tls.cert_file not signed by tls.ca_file",
			fmt.Sprintf("%s does not verify against %s (%v): peers that check the agent against the same CA bundle refuse it.", t.CertFile, t.CAFile, err),
			"tls.cert_file")
	}
}

// certValid warns of block's cert_file (file, holding cert) outside its
// validity at c.now, saying who refuses it then; false when it warned. Not
// checked without c.now.
func (c *checker) certValid(cert tls.Certificate, block, file, refuses string) bool {
	leaf := cert.Leaf
	if leaf == nil || c.now.IsZero() {
		return false
	}
	field := block + ".cert_file"
	when := func(x time.Time) string { return x.UTC().Format(time.RFC3339) }
	switch {
	case c.now.After(leaf.NotAfter):
		c.add(hcl.DiagWarning, "Expired "+field,
			fmt.Sprintf("%s expired at %s: %s. Renew it.", file, when(leaf.NotAfter), refuses), field)
		return false
	case c.now.Before(leaf.NotBefore):
		c.add(hcl.DiagWarning, field+" not valid yet",
			fmt.Sprintf("%s is valid from %s (the clock here reads %s): until then %s.", file, when(leaf.NotBefore), when(c.now), refuses), field)
		return false
	}
	return true
}

// nomad builds the agent's Nomad API client from the nomad block (its TLS
// files are read here; nothing is sent). Each call that is not a blocking
// query fails after timeout (see useNomadHTTPClient). Over http:// or a
// unix:// socket the TLS settings are left out: only the environment can
// have set them (config.Validate refuses them from a file), and the agent
// logs them as unused (config.Unused).
func (c *checker) nomad(timeout time.Duration) *nomadapi.Client {
	n := c.cfg.Nomad
	if !n.UsesTLS() {
		n.CAFile, n.CertFile, n.KeyFile, n.TLSServerName, n.SkipVerify = "", "", "", "", false
	}
	ok := true
	var fields []string
	read := map[string][]byte{}
	for _, f := range []struct{ field, path string }{
		{"nomad.ca_file", n.CAFile}, {"nomad.cert_file", n.CertFile}, {"nomad.key_file", n.KeyFile},
	} {
		if f.path != "" {
			b, fine := c.readFile(f.field, f.path)
			ok = ok && fine
			read[f.field] = b
			fields = append(fields, f.field)
		}
	}
	// nomad.token_file is read for every request (boundedTransport), as
	// prometheus.token_file is: checked here as that read does it.
	if n.TokenFile != "" {
		if _, err := promsource.ReadToken(n.TokenFile); err != nil {
			summary := "Cannot read nomad.token_file"
			if ce := (*promsource.CredentialError)(nil); errors.As(err, &ce) {
				summary = "Invalid nomad.token_file"
			}
			c.add(hcl.DiagError, summary, fmt.Sprintf("%s: %s.", n.TokenFile, reason(err)), "nomad.token_file")
			ok = false
		}
	}
	if !ok {
		return nil
	}
	if n.CertFile != "" && n.KeyFile != "" {
		// A pair that is none is refused below, by the client's TLS set-up.
		if cert, err := tls.X509KeyPair(read["nomad.cert_file"], read["nomad.key_file"]); err == nil {
			c.certValid(cert, "nomad", n.CertFile, "a Nomad that requires a client certificate (verify_https_client) refuses every call")
		}
	}
	ncfg := nomadapi.DefaultConfig()
	// DefaultConfig also reads NOMAD_HTTP_AUTH and NOMAD_CAPATH, which are
	// no setting of foreshape's (config.IgnoredEnv): the client uses only
	// what the configuration shows.
	ncfg.HttpAuth = nil
	ncfg.Address = n.Address
	ncfg.Region = n.Region
	ncfg.Namespace = n.Namespace
	ncfg.SecretID = n.Token.Reveal()
	ncfg.TLSConfig = &nomadapi.TLSConfig{
		CACert: n.CAFile, ClientCert: n.CertFile, ClientKey: n.KeyFile,
		TLSServerName: n.TLSServerName, Insecure: n.SkipVerify,
	}
	var client *nomadapi.Client
	err := useNomadHTTPClient(ncfg, timeout, n.TokenFile)
	if err == nil {
		client, err = nomadapi.NewClient(ncfg)
	}
	if err != nil {
		c.add(hcl.DiagError, "Invalid nomad TLS files",
			fmt.Sprintf("Nomad's API client cannot use %s: %v.", strings.Join(fields, ", "), err), fields...)
		return nil
	}
	return client
}

// consul builds the Consul API client when the agent registers in Consul
// or looks its servers up there (a provider=consul retry_join entry). The
// client also reads Consul's own environment variables (CONSUL_CACERT,
// CONSUL_HTTP_TOKEN_FILE, …).
func (c *checker) consul() *consulapi.Client {
	cc := c.cfg.Consul
	if !c.cfg.ConsulUsed() {
		return nil
	}
	// Consul's client ignores a switch it cannot parse (it logs a line of
	// its own), and would then speak plain HTTP or verify certificates
	// against what the variable said.
	bad := false
	for _, name := range []string{"CONSUL_HTTP_SSL", "CONSUL_HTTP_SSL_VERIFY"} {
		if v := os.Getenv(name); v != "" {
			if _, err := strconv.ParseBool(v); err != nil {
				c.add(hcl.DiagError, "Invalid environment variable "+name,
					fmt.Sprintf("Consul's API client, for %s, reads %s from the environment, and %s=%q is not true or false: it would ignore it. Set it to true or false, or unset it.", cc.Address, name, name, v),
					"consul.enabled", "server.retry_join")
				bad = true
			}
		}
	}
	if bad {
		return nil
	}
	client, err := ConsulClient(cc)
	if err != nil {
		// What fails is what Consul's client reads from its own
		// variables (a CA or client certificate, a token file): name them.
		if set := consulEnvSet(os.Getenv); len(set) > 0 {
			c.add(hcl.DiagError, "Cannot use Consul's environment variables",
				fmt.Sprintf("Consul's API client for %s, which also reads %s from the environment: %v. Fix or unset them.", cc.Address, strings.Join(set, ", "), err),
				"consul.enabled", "server.retry_join")
			return nil
		}
		c.add(hcl.DiagError, "Cannot use consul.address",
			fmt.Sprintf("Consul's API client for %s: %v.", cc.Address, err), "consul.address")
		return nil
	}
	return client
}

// consulEnv are the variables Consul's API client reads itself, beyond
// CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN (consul.address and consul.token);
// shown says whether a message may show the value (a path or a name).
var consulEnv = []struct {
	name  string
	shown bool
}{
	{"CONSUL_CACERT", true}, {"CONSUL_CAPATH", true}, {"CONSUL_CLIENT_CERT", true}, {"CONSUL_CLIENT_KEY", true},
	{"CONSUL_TLS_SERVER_NAME", true}, {"CONSUL_HTTP_SSL", true}, {"CONSUL_HTTP_SSL_VERIFY", true},
	{"CONSUL_HTTP_TOKEN_FILE", true}, {"CONSUL_HTTP_AUTH", false}, {"CONSUL_NAMESPACE", true}, {"CONSUL_PARTITION", true},
}

// consulEnvSet lists those of consulEnv that getenv sets, as NAME=VALUE,
// or NAME alone for a credential.
func consulEnvSet(getenv func(string) string) []string {
	var out []string
	for _, e := range consulEnv {
		v := getenv(e.name)
		switch {
		case v == "":
		case e.shown:
			out = append(out, fmt.Sprintf("%s=%q", e.name, v))
		default:
			out = append(out, e.name)
		}
	}
	return out
}

// ConsulClient builds a Consul API client from the consul block (and
// Consul's own environment variables); it sends nothing.
func ConsulClient(cc config.Consul) (*consulapi.Client, error) {
	ccfg := consulapi.DefaultConfig()
	if cc.Address != "" {
		addr := cc.Address
		if scheme, rest, ok := strings.Cut(addr, "://"); ok && scheme != "unix" {
			ccfg.Scheme, addr = scheme, rest
		}
		// unix://PATH stays whole: Consul's client dials the socket.
		ccfg.Address = addr
	}
	ccfg.Token = cc.Token.Reveal()
	return consulapi.NewClient(ccfg)
}
