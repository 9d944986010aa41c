package predict

import (
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/forecast/global"
	"github.com/foreshape/foreshape/policies"
)

// TestGlobalNetworkFineTuned: after TuneEvery of data time, the predictor
// fine-tunes the shipped 5-minute network on its series in the background,
// and later fits use the tuned copy; the shipped one is left as it was.
func TestGlobalNetworkFineTuned(t *testing.T) {
	shipped, ok := global.Default(5 * time.Minute)
	if !ok {
		t.Skip("no shipped 5-minute network")
	}
	before := shipped.Provenance.Note
	s := newStore(t)
	n := 2 * 288
	fill(t, s, cpu, t0, n, daily(50, 15))
	pol := policy(t, "", func(p *policies.Policy) { p.Forecast.Model = "auto" })
	p := New(nil)
	defer p.Close()
	at := t0.Add(time.Duration(n-100) * 5 * time.Minute)
	// The first cycle starts the clock; one TuneEvery of data time later a
	// fine-tuning starts.
	p.RunOnce(at, s, []*policies.Policy{pol})
	if p.tuner.model(5*time.Minute)() != nil {
		t.Fatal("tuned before TuneEvery passed")
	}
	at = at.Add(TuneEvery)
	p.RunOnce(at, s, []*policies.Policy{pol})
	p.tuner.wait()
	tuned := p.tuner.model(5 * time.Minute)()
	if tuned == nil {
		t.Fatal("no fine-tuned network after TuneEvery of data time")
	}
	// The N-BEATS network, the one auto uses, is tuned; the LSTM stays
	// as shipped.
	if tuned.Config.Arch != "nbeats" || tuned.Config.Step() != 5*time.Minute {
		t.Errorf("tuned %s (%s at %v), want the 5-minute N-BEATS network", tuned.Config.Name, tuned.Config.Arch, tuned.Config.Step())
	}
	if !strings.Contains(tuned.Provenance.Note, "fine-tuned") || shipped.Provenance.Note != before {
		t.Errorf("tuned %q; shipped %q (was %q)", tuned.Provenance.Note, shipped.Provenance.Note, before)
	}
	if p.models[modelKey{"web", cpu.String()}] == nil {
		t.Fatal("no pipeline")
	}
}
