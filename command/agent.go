package command

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/cli"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/foreshape/foreshape/agent"
	"github.com/foreshape/foreshape/agent/preflight"

	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/policies"
)

func init() {
	register("agent", func(m Meta) cli.Command { return &AgentCommand{Meta: m} })
}

// AgentCommand runs the foreshape agent.
type AgentCommand struct{ Meta }

func (c *AgentCommand) Synopsis() string { return "Run the foreshape agent" }

func (c *AgentCommand) Help() string {
	return strings.TrimSpace(`
Usage: foreshape agent [options]

  Runs the foreshape agent. The configuration is loaded from -config (a
  file, or a directory of *.hcl files merged alphabetically), then the
  NOMAD_* and CONSUL_HTTP_* environment overrides, then the flags below; the
  shaping policies are loaded from the configuration's policies.dir.
  NOMAD_HTTP_AUTH and NOMAD_CAPATH, which the nomad CLI reads and no
  setting of foreshape's takes, are ignored, and logged as such.

  A server (the default) joins the servers of server.retry_join, or, with
  no retry_join, bootstraps a cluster of its own; while it leads it
  collects Nomad's node and allocation metrics, forecasts every policy's
  localities, reports hotspots, and acts on them: it queues the
  migrations of drain schedules, reserves room for migrations with
  placeholder jobs, scales through the policies' scale targets and moves
  the queue in score order (with forecast_only = true it plans and records
  without changing anything). Every server serves the HTTP API:
  followers answer reads from the replicated state, pass requests that
  change something to the leader, and answer forecasts from the leader's
  last cycle.

  With server { enabled = false } the agent is a client agent: it runs
  beside a Nomad client, reads that node's stats from the local Nomad
  agent once per cycle and reports them to the leader through any server
  of server.retry_join, so the leader does not poll the node itself. Its
  HTTP API forwards requests to the leader.

  SIGHUP reloads the configuration and the policies, keeping the old ones
  when the new ones are invalid or policies.dir holds no policy any more
  (restart the agent to run without policies): log_level, the acl block
  (enabled, token_file and read_token_file, both read again) and the
  policies take effect at once, and so do the tls block's certificate, key and CA files replaced
  in place (a renewed certificate: new connections to the HTTP API and
  the Raft port use it; a certificate and key that do not match are
  refused and the last good ones kept); every other setting changed is
  logged by name at each reload and takes effect at the next start, as is
  a nomad.* or prometheus.* certificate or CA file replaced in place
  (prometheus.token_file and password_file are read again at every
  query, without a reload). A policy that needs what the agent sets
  up only at its start is refused until a restart: forecast.queries
  without the prometheus.address it started with, migrate.spread_by_use
  when no policy it started with spread by use. SIGINT or SIGTERM
  shut down cleanly; a second signal forces exit.

  -dev runs a throwaway single-node agent in memory against an embedded
  simulated Nomad cluster driven by real traces, with policies for it, so
  that forecasts, a predicted hotspot, and rack a's maintenance carried
  out with reservations and migrations show within a minute. Those demo
  policies run unless a configuration file (-config) sets policies.dir
  and it holds policies (its default, where a deployed agent's policies
  are, is not read); a reload that finds policies there runs them
  instead. It talks to
  no other Nomad, so a configuration file setting nomad.* is refused
  (-dev-sim=false runs it against nomad.address instead).

  -replay DIR runs a throwaway single-node agent in memory on recorded
  series instead of a cluster: every *.csv or *.tsv file in DIR with
  absolute timestamps and a header naming each value column by its series,
  LOCALITY:METRIC (timestamp,dc1/web:cpu,dc1/web:memory), played back at
  -replay-speed from far enough into the recording that the policies'
  history is there at the first cycle. Rows whose time or a value is
  missing or invalid are left out, with a warning naming the file, how
  many, and the first one's line and column. The policies are DIR's *.hcl
  files (a configuration file setting policies.dir beside them is
  refused), or the configuration's policies.dir when DIR holds none; a
  reload reads them again from neither (its log says so): restart the
  replay to run changed policies. When the recording ends its series go stale. A replay
  talks to no Nomad and no Prometheus and acts on nothing, so a
  configuration file setting nomad.*, prometheus.*, forecast_only,
  reserve.* or queue.* is refused.

Options:

  -config=PATH      Agent configuration file or directory. Required unless
                    -dev or -replay is given.
  -dev              Dev mode: in-memory single server, debug logs, embedded
                    simulated cluster and its policies.
  -dev-sim=false    With -dev, use nomad.address (or NOMAD_ADDR) instead of
                    the embedded simulated cluster.
  -sim-speed=X      With -dev's embedded simulated cluster, virtual seconds
                    per wall second (at most 100000). Default: 180.
  -sim-clock        Take the data time from a foreshape simulator at
                    nomad.address ('foreshape sim serve') instead of the
                    wall clock (not with -replay, nor with -dev on its
                    embedded cluster, which give the data time already).
  -replay=DIR       Run on the recorded series in DIR instead of Nomad.
  -replay-speed=X   With -replay, recorded seconds played per wall second
                    (at most 100000). Default: 60.
  -http-addr=ADDR   HTTP API address, HOST:PORT; overrides http.address.

Example:

  $ foreshape agent -dev
  $ foreshape agent -config /etc/foreshape/config.d
  $ foreshape agent -config agent.hcl -sim-clock   # against 'foreshape sim serve'
  $ foreshape agent -replay ./recorded -replay-speed 600
`)
}

func (c *AgentCommand) Run(args []string) int {
	fs := c.FlagSet("agent", c.Help)
	path := fs.String("config", "", "")
	dev := fs.Bool("dev", false, "")
	useDevSim := fs.Bool("dev-sim", true, "")
	speed := fs.Float64("sim-speed", defaultDevSpeed, "")
	simClock := fs.Bool("sim-clock", false, "")
	httpAddr := fs.String("http-addr", "", "")
	replayDir := fs.String("replay", "", "")
	replaySpeed := fs.Float64("replay-speed", defaultReplaySpeed, "")
	if code, ok := c.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.UsageError("agent", fmt.Sprintf("agent takes no arguments, got %q", fs.Arg(0)))
	}
	replaying := *replayDir != ""
	if *path == "" && !*dev && !replaying {
		return c.UsageError("agent", "-config PATH is required (or -dev for a throwaway dev agent, or -replay DIR)")
	}
	if *dev && replaying {
		return c.UsageError("agent", "-dev and -replay both run without a cluster; choose one")
	}
	if !(*speed > 0 && *speed <= maxClockSpeed) {
		return c.UsageError("agent", fmt.Sprintf("-sim-speed must be positive and at most %d (virtual seconds per wall second), got %g", maxClockSpeed, *speed))
	}
	if !(*replaySpeed > 0 && *replaySpeed <= maxClockSpeed) {
		return c.UsageError("agent", fmt.Sprintf("-replay-speed must be positive and at most %d (recorded seconds per wall second), got %g", maxClockSpeed, *replaySpeed))
	}
	// Flags that only act with another one would do nothing without it.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	embedded := *dev && *useDevSim
	switch {
	case set["dev-sim"] && !*dev:
		return c.UsageError("agent", "-dev-sim only applies with -dev")
	case set["sim-speed"] && !embedded:
		return c.UsageError("agent", "-sim-speed is the speed of -dev's embedded simulated cluster; it needs -dev (without -dev-sim=false)")
	case *simClock && embedded:
		return c.UsageError("agent", "-sim-clock takes the data time from 'foreshape sim serve' at nomad.address; -dev's embedded simulated cluster gives it already (use -dev-sim=false to run -dev against a simulator you serve)")
	case *simClock && replaying:
		return c.UsageError("agent", "-sim-clock and -replay: a replay's data time comes from its recording; choose one")
	case set["replay-speed"] && !replaying:
		return c.UsageError("agent", "-replay-speed only applies with -replay DIR")
	}
	setup := loadAgent(*path, *dev || replaying, *replayDir, *dev && *useDevSim, *httpAddr, os.Getenv, nil)
	writeDiags(c.Err, setup.files, setup.diags)
	if setup.diags.HasErrors() {
		return setup.exitCode()
	}
	cfg := setup.cfg
	log := hclog.New(&hclog.LoggerOptions{
		Name: "foreshape", Level: hclog.LevelFromString(cfg.LogLevel), JSONFormat: cfg.LogJSON, Output: c.Err,
	})
	opts := agent.Options{Logger: log, Version: Version()}
	if *dev {
		pols, err := devPolicies()
		if err != nil {
			c.UI.Error(fmt.Sprintf("error: %v", err))
			return ExitInvalid
		}
		opts.FallbackPolicies = pols
	}
	var rp *replayRun
	if replaying {
		var (
			diags hcl.Diagnostics
			err   error
		)
		rp, diags, err = prepareReplay(*replayDir, *replaySpeed, setup.policies)
		writeDiags(c.Err, setup.files, diags)
		if err != nil {
			c.UI.Error(fmt.Sprintf("error: %v", err))
		}
		if err != nil || diags.HasErrors() {
			return ExitInvalid
		}
		opts.Sources = []source.Source{rp.source}
		opts.Clock, opts.Lookback, opts.Policies = rp.clock, rp.lookback, rp.policies
	}
	var devSimulator *devSim
	if *dev && *useDevSim {
		var err error
		if devSimulator, err = startDevSim(*speed, log); err != nil {
			c.UI.Error(fmt.Sprintf("error: %v", err))
			return ExitInvalid
		}
		defer devSimulator.stop()
		cfg.Nomad.Address = devSimulator.url
		opts.Clock = devSimulator.clock()
	} else if *simClock {
		clock := &remoteSimClock{address: cfg.Nomad.Address, token: cfg.Nomad.Token.Reveal()}
		opts.Clock = clock
		ctx, stop := context.WithCancel(c.Ctx)
		defer stop()
		go clock.follow(ctx, 5*time.Second)
	}
	logUnused(log, cfg)
	var a runningAgent
	var err error
	if cfg.Server.Enabled {
		a, err = agent.New(cfg, opts)
	} else {
		a, err = agent.NewClient(cfg, opts)
	}
	if err != nil {
		c.UI.Error(fmt.Sprintf("error: %v", err))
		return ExitInvalid
	}
	defer a.Close()
	c.banner(a, cfg, devSimulator, rp, *replayDir)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			next := loadAgent(*path, *dev || replaying, *replayDir, *dev && *useDevSim, *httpAddr, os.Getenv, cfg)
			writeDiags(c.Err, next.files, next.diags)
			if next.diags.HasErrors() {
				log.Error(fmt.Sprintf("reload: the new %s invalid; keeping the running configuration and policies", invalidWhat(next)),
					"error", next.diags.Errs()[0].Error(), "errors", len(next.diags.Errs()))
				continue
			}
			if *dev && devSimulator != nil {
				next.cfg.Nomad.Address = devSimulator.url
			}
			if err := a.Reload(next.cfg); err != nil {
				log.Error("reload failed", "error", err)
				continue
			}
			logUnused(log, next.cfg)
		}
	}()
	runErr := a.Run(c.Ctx)
	closeErr := a.Close()
	if err := cmp.Or(runErr, closeErr); err != nil {
		c.UI.Error(fmt.Sprintf("error: %v", err))
		return ExitInvalid
	}
	log.Info("agent stopped cleanly")
	return ExitOK
}

// invalidWhat says what a refused reload found invalid: the configuration,
// the policies (an error in a file of policies.dir), or both.
func invalidWhat(s agentSetup) string {
	var conf, pols bool
	for _, d := range s.diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		inDir := s.cfg != nil && d.Subject != nil && s.cfg.Policies.Dir != "" &&
			filepath.Dir(d.Subject.Filename) == filepath.Clean(s.cfg.Policies.Dir)
		pols = pols || inDir
		conf = conf || !inDir
	}
	switch {
	case pols && conf:
		return "configuration and policies are"
	case pols:
		return "policies are"
	}
	return "configuration is"
}

// logUnused logs what the environment set that no client of the agent
// uses (a file setting it is refused), and the nomad CLI's variables it
// has no setting for, at start and after each reload, so that nobody
// wonders why NOMAD_CACERT did nothing.
func logUnused(log hclog.Logger, cfg *config.Config) {
	for _, u := range cfg.Unused() {
		log.Info("setting unused", "setting", u.Field, "from", u.Source, "reason", u.Reason)
	}
	for _, v := range config.IgnoredEnv(os.Getenv) {
		log.Info("environment variable ignored", "variable", v.Name, "reason", v.Reason)
	}
}

// runningAgent is a server (agent.Agent) or a client agent (agent.Client).
type runningAgent interface {
	Run(ctx context.Context) error
	Reload(cfg *config.Config) error
	HTTPAddr() string
	Close() error
}

// invokedAs is how the banner's commands name foreshape: "foreshape"
// when that name on the PATH (lookPath) runs the binary at arg0, the path
// the agent was started by, else that path (bin/foreshape, as make dev
// starts it in a checkout, where "foreshape" is no command). A program
// not named foreshape (a test binary) is "foreshape".
func invokedAs(arg0 string, lookPath func(string) (string, error)) string {
	if filepath.Base(arg0) != "foreshape" || !strings.ContainsRune(arg0, filepath.Separator) {
		return "foreshape"
	}
	if onPath, err := lookPath("foreshape"); err == nil && sameFile(onPath, arg0) {
		return "foreshape"
	}
	return shellQuote(arg0)
}

// sameFile says whether the paths a and b name one file.
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// banner tells the operator where the agent is and what to try next.
func (c *AgentCommand) banner(a runningAgent, cfg *config.Config, d *devSim, rp *replayRun, replayDir string) {
	scheme := "http"
	if cfg.TLS.Enabled() {
		scheme = "https"
	}
	addr := scheme + "://" + a.HTTPAddr()
	if !cfg.Server.Enabled {
		fmt.Fprintf(c.Out, "==> foreshape client agent running\n")
		fmt.Fprintf(c.Out, "      HTTP API: %s (forwarded to the leader)\n", addr)
		fmt.Fprintf(c.Out, "         Nomad: %s\n", cfg.Nomad.Address)
		fmt.Fprintf(c.Out, "       Servers: %s\n\n", strings.Join(cfg.Server.RetryJoin, ", "))
		return
	}
	fmt.Fprintf(c.Out, "==> foreshape agent running\n")
	fmt.Fprintf(c.Out, "      HTTP API: %s\n", addr)
	fmt.Fprintf(c.Out, "     Dashboard: %s/ui/\n", addr)
	if rp != nil {
		now, _ := rp.clock.Now(c.Ctx)
		fmt.Fprintf(c.Out, "        Replay: %d recorded series from %s at %gx, from %s (the recording ends about %s from now)\n",
			rp.series, replayDir, rp.clock.speed, now.Format(time.RFC3339),
			(time.Duration(float64(rp.end.Sub(now)) / rp.clock.speed)).Round(time.Second))
	} else {
		fmt.Fprintf(c.Out, "         Nomad: %s\n", cfg.Nomad.Address)
	}
	if d != nil {
		fmt.Fprintf(c.Out, "     Simulator: default scenario at %gx (a dc2 demand surge at +3h virtual, about %s from now)\n",
			d.speed, (3 * time.Hour / time.Duration(d.speed)).Round(time.Second))
	}
	fmt.Fprintf(c.Out, "\n==> Try:\n")
	if cfg.ACL.Enabled {
		fmt.Fprintf(c.Out, "      (ACLs are on: set FORESHAPE_TOKEN, or add -token, to a token of %s)\n", cfg.ACL.TokenFile)
	}
	curlTLS := ""
	if cfg.TLS.Enabled() && cfg.TLS.CAFile != "" {
		fmt.Fprintf(c.Out, "      (TLS is on: set FORESHAPE_CACERT, or add -ca-cert, to %s)\n", cfg.TLS.CAFile)
		curlTLS = `--cacert "$FORESHAPE_CACERT" `
	}
	if cfg.TLS.Enabled() && cfg.TLS.VerifyIncoming {
		fmt.Fprintf(c.Out, "      (tls.verify_incoming is on: set FORESHAPE_CLIENT_CERT and FORESHAPE_CLIENT_KEY, or add -client-cert and -client-key, to a certificate and its key signed by the agent's CA)\n")
		curlTLS += `--cert "$FORESHAPE_CLIENT_CERT" --key "$FORESHAPE_CLIENT_KEY" `
	}
	// The commands are quoted for a shell, as they are to be pasted into
	// one: a locality such as dc1/*/web is a glob there, which zsh
	// refuses when nothing matches it and bash expands when a path does.
	bin := invokedAs(os.Args[0], exec.LookPath)
	fmt.Fprintf(c.Out, "      %s status -address %s\n", bin, shellQuote(addr))
	loc := "dc2" // the dev scenario's surging datacenter
	if srv, ok := a.(*agent.Agent); ok && d == nil {
		if pols := srv.Policies(c.Ctx); len(pols) > 0 {
			loc = pols[0].Locality
		}
	}
	fmt.Fprintf(c.Out, "      %s forecast show -address %s -metric cpu %s\n", bin, shellQuote(addr), shellQuote(loc))
	fmt.Fprintf(c.Out, "      %s hotspots -address %s\n", bin, shellQuote(addr))
	curlToken := ""
	if cfg.ACL.Enabled {
		curlToken = `-H "X-Foreshape-Token: $FORESHAPE_TOKEN" `
	}
	fmt.Fprintf(c.Out, "      curl -s %s%s%s | head\n\n", curlTLS, curlToken, shellQuote(addr+"/v1/forecasts"))
}

// agentSetup is everything the agent starts from.
type agentSetup struct {
	cfg      *config.Config
	policies []*policies.Policy
	// files and diags are for writeDiags; diags.HasErrors() means the
	// agent must not start.
	files map[string]*hcl.File
	diags hcl.Diagnostics
	// badFlag: the -http-addr value is refused (a usage error, exit 2,
	// where a refused file or environment value exits 1).
	badFlag bool
}

// exitCode is how a command that loaded s ends when s.diags has errors.
func (s agentSetup) exitCode() int {
	if s.badFlag {
		return ExitUsage
	}
	return ExitInvalid
}

// loadAgent builds the agent's configuration from its sources, in order of
// precedence: defaults (dev or production), the files at path (none when
// empty), the environment through getenv, and the -http-addr flag; then it
// runs every check the agent makes before it starts (preflight.Check: the
// configuration's rules, a server's policies in policies.dir, the files
// the configuration names; then, if those pass, config.CheckListen: the
// addresses it listens on are this host's), as `config validate` does. A missing policies
// directory is an error, or a warning in dev mode. replayDir, when set,
// says the agent runs on the recorded series there instead of Nomad, and
// on its policies (*.hcl) instead of policies.dir's when it holds some,
// which are checked as policies.dir's would be; devSim says it runs
// against dev mode's embedded simulated cluster: either way its nomad
// settings would do nothing, so a file setting them is refused.
// listening, when not nil, is the configuration the running agent started
// with, whose addresses it listens on until it restarts: a reload checks
// only the listen addresses that changed (they apply at the next start),
// not those it already listens on, whose host name a resolver that is
// down at the reload could not answer for.
func loadAgent(path string, dev bool, replayDir string, devSim bool, httpAddr string, getenv func(string) string, listening *config.Config) agentSetup {
	replay := replayDir != ""
	cfg, s := loadAgentConfig(path, dev, httpAddr, getenv)
	if s.diags.HasErrors() {
		return s
	}
	switch {
	case replay:
		cfg.NoNomad = &config.NoNomad{Why: "a replay (-replay) reads recorded series, not Nomad", Fix: "Run the agent without -replay to use it", Replay: true}
	case devSim:
		cfg.NoNomad = devSimNoNomad()
	}
	opts := preflight.Options{Sources: replay}
	if !dev {
		opts.Now = time.Now() // dev mode and a replay run on data time
	}
	if replay {
		// The replay runs its directory's policies when it holds some:
		// they are checked, as policies.dir's would be.
		pols, files, diags := replayPolicies(replayDir)
		maps.Copy(s.files, files)
		s.diags = append(s.diags, diags...)
		opts.Policies = pols
		if pols != nil && cfg.Source("policies.dir") != "default" {
			s.diags = append(s.diags, cfg.At(&hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid policies.dir",
				Detail: fmt.Sprintf("policies.dir is set, but a replay runs the policies of its directory %s when it holds *.hcl files, as it does, so policies.dir would be read by nothing. Remove it, or take the *.hcl files out of %s.", replayDir, replayDir),
			}, "policies.dir"))
		}
	}
	start, diags := preflight.Check(cfg, opts)
	maps.Copy(s.files, start.Files)
	s.diags = append(s.diags, diags...)
	// What it listens on must be this host's (net.Listen refused it with
	// neither file nor line once the agent had started its Raft node):
	// checked once the rest is valid, as it depends on the host and may
	// wait for a name lookup.
	if !s.diags.HasErrors() {
		check := cfg
		if listening != nil {
			changed := *cfg
			if changed.HTTP.Address == listening.HTTP.Address {
				changed.HTTP.Address = ""
			}
			if changed.BindAddr == listening.BindAddr {
				changed.BindAddr = ""
			}
			check = &changed
		}
		s.diags = append(s.diags, check.CheckListen(listenHost())...)
	}
	s.cfg, s.policies = cfg, start.Policies
	return s
}

// listenHost is the host loadAgent checks listen addresses on: thisHost,
// but for tests.
var listenHost = thisHost

// thisHost is the machine the agent runs on, as config.CheckListen asks
// it: its interfaces' addresses, and name lookups bounded by
// config.ListenLookupTimeout.
func thisHost() config.Host {
	return config.Host{Addrs: net.InterfaceAddrs, LookupIP: net.DefaultResolver.LookupIPAddr, LookupTimeout: config.ListenLookupTimeout}
}

// devSimNoNomad says why -dev's nomad settings would do nothing: it runs
// against its embedded simulated Nomad cluster.
func devSimNoNomad() *config.NoNomad {
	return &config.NoNomad{Why: "-dev runs against its embedded simulated Nomad cluster", Fix: "Add -dev-sim=false to run -dev against this Nomad"}
}

// loadAgentConfig loads the agent configuration alone, unchecked; see
// loadAgent for the order of sources.
func loadAgentConfig(path string, dev bool, httpAddr string, getenv func(string) string) (*config.Config, agentSetup) {
	base := config.Default()
	if dev {
		base = config.DevDefault()
	}
	s := agentSetup{files: map[string]*hcl.File{}}
	cfg := base
	if path != "" {
		loader := config.NewLoader()
		var diags hcl.Diagnostics
		cfg, diags = loader.Load(base, path)
		s.files = loader.Files()
		s.diags = append(s.diags, diags...)
	}
	s.diags = append(s.diags, config.ApplyEnv(cfg, getenv)...)
	if httpAddr != "" {
		d := config.Set(cfg, "http.address", httpAddr, "flag -http-addr")
		s.diags = append(s.diags, d...)
		s.badFlag = d.HasErrors()
	}
	return cfg, s
}
