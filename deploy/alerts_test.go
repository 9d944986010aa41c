package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	alertRules = "foreshape-alerts.rules.yml"
	alertTests = "foreshape-alerts.test.yml"
	// prometheusExample is a whole Prometheus configuration: the
	// telemetry page's scrape configuration and the rules.
	prometheusExample = "foreshape-prometheus.yml"
	// telemetryDoc describes every metric and alert; the agent's
	// TestTelemetryDocumented holds its metrics to the agents' registries.
	telemetryDoc = "../docs/telemetry.md"
)

// alertNames are the alerts foreshape-alerts.rules.yml defines, in order.
func alertNames(t *testing.T, rules string) []string {
	t.Helper()
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert: (\S+)\s*$`).FindAllStringSubmatch(rules, -1) {
		names = append(names, m[1])
	}
	if len(names) < 10 {
		t.Fatalf("found %d alerts in %s: the scan is broken", len(names), alertRules)
	}
	return names
}

// alertCases counts, per alert, the cases of foreshape-alerts.test.yml
// that expect it to fire and those that expect it quiet (exp_alerts: []).
func alertCases(t *testing.T, tests string) (firing, quiet map[string]int) {
	t.Helper()
	firing, quiet = map[string]int{}, map[string]int{}
	lines := strings.Split(tests, "\n")
	for i, line := range lines {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "alertname: ")
		if !ok || i+1 >= len(lines) {
			continue
		}
		switch next := strings.TrimSpace(lines[i+1]); next {
		case "exp_alerts: []":
			quiet[name]++
		case "exp_alerts:":
			firing[name]++
		default:
			t.Errorf("%s:%d: alertname %s is followed by %q, want exp_alerts", alertTests, i+1, name, next)
		}
	}
	return firing, quiet
}

// TestAlertRules: Prometheus accepts deploy/foreshape-alerts.rules.yml
// (promtool check rules) and its unit tests pass (promtool test rules),
// each alert with a case that fires it and one that must not; the scrape
// configuration docs/telemetry.md shows is valid with the rules file in
// its rule_files (promtool check config), and so is
// deploy/foreshape-prometheus.yml, which ends with it; every
// metric the rules read is one docs/telemetry.md describes, and the page
// describes every alert, with its rule's severity and for clause. Without promtool (Debian's prometheus package,
// which .ci/run installs) the promtool half is skipped, unless
// FORESHAPE_REQUIRE_PROMETHEUS is set, as in CI.
func TestAlertRules(t *testing.T) {
	rulesSrc, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	testsSrc, err := os.ReadFile(alertTests)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(telemetryDoc)
	if err != nil {
		t.Fatal(err)
	}
	names := alertNames(t, string(rulesSrc))
	firing, quiet := alertCases(t, string(testsSrc))
	for _, n := range names {
		if firing[n] == 0 || quiet[n] == 0 {
			t.Errorf("%s has %d cases that fire %s and %d that hold it quiet; want one of each at least", alertTests, firing[n], n, quiet[n])
		}
		if !strings.Contains(string(doc), "`"+n+"`") {
			t.Errorf("docs/telemetry.md does not describe the alert %s", n)
		}
	}
	for n := range firing {
		if !slices.Contains(names, n) {
			t.Errorf("%s tests %s, which %s does not define", alertTests, n, alertRules)
		}
	}

	// The page's table gives each alert the rule's severity and, for a
	// rule with a for clause, its duration.
	rows := map[string][]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(Foreshape[A-Za-z]+)` \\| ([a-z]+) \\| (.*) \\|$").FindAllStringSubmatch(string(doc), -1) {
		rows[m[1]] = m[2:]
	}
	rules := regexp.MustCompile(`(?m)^\s*- alert: `).Split(string(rulesSrc), -1)[1:]
	if len(rules) != len(names) {
		t.Fatalf("split %s into %d rules, found %d alerts: the scan is broken", alertRules, len(rules), len(names))
	}
	for i, n := range names {
		row, ok := rows[n]
		if !ok {
			t.Errorf("docs/telemetry.md's alert table has no row for %s", n)
			continue
		}
		severity := ""
		if m := regexp.MustCompile(`(?m)^\s*severity: (\S+)`).FindStringSubmatch(rules[i]); m != nil {
			severity = m[1]
		}
		if severity != row[0] {
			t.Errorf("docs/telemetry.md gives %s the severity %s; %s gives it %q", n, row[0], alertRules, severity)
		}
		if m := regexp.MustCompile(`(?m)^\s*for: (\S+)`).FindStringSubmatch(rules[i]); m != nil {
			d, err := time.ParseDuration(m[1])
			if err != nil {
				t.Fatalf("%s: for: %s: %v", n, m[1], err)
			}
			want := fmt.Sprintf("for %d minutes", int(d.Minutes()))
			if d == time.Minute {
				want = "for 1 minute"
			}
			if !strings.Contains(row[1], want) {
				t.Errorf("docs/telemetry.md says %s fires when %q; its rule's for clause is %s (%q)", n, row[1], m[1], want)
			}
		}
	}

	// The metrics the expressions read are the page's.
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(foreshape_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	if len(documented) < 20 {
		t.Fatalf("docs/telemetry.md's tables name %d metrics: the scan is broken", len(documented))
	}
	read := 0
	for _, line := range strings.Split(string(rulesSrc), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") || strings.Contains(line, "summary:") {
			continue
		}
		for _, m := range regexp.MustCompile(`\bforeshape_[a-z_]+\b`).FindAllString(line, -1) {
			read++
			if !documented[m] {
				t.Errorf("%s reads %s, which docs/telemetry.md does not describe", alertRules, m)
			}
		}
	}
	if read < 15 {
		t.Fatalf("found %d metric names in %s: the scan is broken", read, alertRules)
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("FORESHAPE_REQUIRE_PROMETHEUS") != "" {
			t.Fatalf("promtool not found and FORESHAPE_REQUIRE_PROMETHEUS is set: %v", err)
		}
		t.Skip("promtool is not installed (Debian's prometheus package holds it: apt-get install prometheus); the rules were not given to Prometheus")
	}
	// docs/telemetry.md's scrape configuration, its files made in a
	// temporary directory, with the rules file.
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) != 1 {
		t.Fatalf("docs/telemetry.md shows %d YAML blocks, want its scrape configuration", len(blocks))
	}
	dir := t.TempDir()
	scrape := strings.ReplaceAll(blocks[0][1], "/etc/prometheus/", dir+"/")
	for _, m := range regexp.MustCompile(regexp.QuoteMeta(dir)+`/(\S+)`).FindAllStringSubmatch(scrape, -1) {
		if err := os.WriteFile(filepath.Join(dir, m[1]), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rulesAbs, err := filepath.Abs(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	promConfig := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promConfig, []byte(scrape+"rule_files:\n  - "+strconv.Quote(rulesAbs)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// foreshape-prometheus.yml: the page's scrape configuration, whole,
	// with the rules file at the path it names.
	example, err := os.ReadFile(prometheusExample)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(example), blocks[0][1]) {
		t.Errorf("%s does not end with docs/telemetry.md's scrape configuration:\n%s", prometheusExample, blocks[0][1])
	}
	if err := os.WriteFile(filepath.Join(dir, "foreshape-alerts.rules.yml"), rulesSrc, 0o600); err != nil {
		t.Fatal(err)
	}
	exampleConfig := filepath.Join(dir, "example.yml")
	if err := os.WriteFile(exampleConfig, []byte(strings.ReplaceAll(string(example), "/etc/prometheus/", dir+"/")), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", "rules", alertRules}, {"test", "rules", alertTests}, {"check", "config", promConfig}, {"check", "config", exampleConfig}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			continue
		}
		t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
	}
}
