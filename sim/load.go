package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/internal/tracefile"
)

// Trace units: how a trace's raw values become a fraction of a request.
const (
	UnitAuto     = "auto"     // fraction if every value ≤ 1, percent if ≤ 100, else divided by the maximum
	UnitPercent  = "percent"  // 0–100
	UnitFraction = "fraction" // 0–1
	UnitMax      = "max"      // divided by the trace's maximum
)

// Trace is one utilisation series, normalised to fractions, sampled at a
// fixed step. It loops when a run outlasts it.
type Trace struct {
	Name   string
	Values []float64
	Step   time.Duration
	// Before holds the traces that stand for the periods before the
	// start (a period being this trace's length), most recent first,
	// repeating; without them the trace loops backwards too.
	Before []*Trace
}

// At returns the value at offset d from the trace's start, linearly
// interpolated between samples and wrapping around at the end. Before the
// start (d < 0) it reads Before, when there are any: the k-th period before
// the start from Before[(k-1) mod len(Before)], at the same phase.
func (t *Trace) At(d time.Duration) float64 {
	if d < 0 && len(t.Before) > 0 && len(t.Values) > 0 {
		period := time.Duration(len(t.Values)) * t.Step
		k := int((-d - 1) / period) // 0 for the period just before the start
		back := t.Before[k%len(t.Before)]
		return back.at(d + time.Duration(k+1)*period)
	}
	return t.at(d)
}

func (t *Trace) at(d time.Duration) float64 {
	n := len(t.Values)
	if n == 0 {
		return 0
	}
	if n == 1 {
		return t.Values[0]
	}
	period := time.Duration(n) * t.Step
	d %= period
	if d < 0 {
		d += period
	}
	i := int(d / t.Step)
	frac := float64(d%t.Step) / float64(t.Step)
	j := i + 1
	if j == n {
		j = 0
	}
	return float64(t.Values[i]*(1-frac)) + float64(t.Values[j]*frac)
}

// ParseTrace reads a trace file with foreshape's trace reader (see
// tracefile.ReadTable: one number per line as PlanetLab, CSV separated by
// commas, semicolons or tabs with or without a header, …) and takes one
// numeric column: column names it by header name or by its position in the
// file from 0; empty picks the first numeric column after the time column,
// or the last column of a headerless file. Timestamps are ignored: samples
// are taken to be step apart, missing and invalid cells are left out.
// unit says how raw values map to fractions.
func ParseTrace(name string, data []byte, column, unit string, step time.Duration) (*Trace, error) {
	if step <= 0 {
		step = 5 * time.Minute
	}
	tb, err := tracefile.ReadTable(name, bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", name, err)
	}
	col, err := pickColumn(tb, column)
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", name, err)
	}
	var vals []float64
	for _, v := range col.Values {
		if !math.IsNaN(v) {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return nil, fmt.Errorf("trace %s: column %q: no samples", name, col.Name)
	}
	if err := normalise(vals, unit); err != nil {
		return nil, fmt.Errorf("trace %s: %w", name, err)
	}
	return &Trace{Name: name, Values: vals, Step: step}, nil
}

// pickColumn finds the column a trace binding names (see ParseTrace).
func pickColumn(tb tracefile.Table, column string) (tracefile.Column, error) {
	cols := tb.Columns
	if column == "" {
		if tb.Header {
			return cols[0], nil
		}
		return cols[len(cols)-1], nil
	}
	for _, c := range cols {
		if c.Name == column {
			return c, nil
		}
	}
	if idx, err := strconv.Atoi(column); err == nil {
		for _, c := range cols {
			if c.Index == idx {
				return c, nil
			}
		}
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return tracefile.Column{}, fmt.Errorf("column %q is not a numeric column of the file (numeric columns: %s)", column, strings.Join(names, ", "))
}

func normalise(vals []float64, unit string) error {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if lo < 0 {
		return fmt.Errorf("negative value %v", lo)
	}
	div := 1.0
	switch unit {
	case "", UnitAuto:
		switch {
		case hi <= 1:
		case hi <= 100:
			div = 100
		default:
			div = hi
		}
	case UnitFraction:
	case UnitPercent:
		div = 100
	case UnitMax:
		div = hi
	default:
		return fmt.Errorf("unknown unit %q (want auto, percent, fraction or max)", unit)
	}
	if div == 0 {
		div = 1
	}
	for i := range vals {
		vals[i] /= div
	}
	return nil
}

// TraceSource finds trace files: first in an optional data directory (for
// larger runs), then in the bundled samples.
type TraceSource struct {
	Data     fs.FS // may be nil
	Embedded fs.FS
}

// ReadFile returns the bytes of a trace file.
func (s TraceSource) ReadFile(name string) ([]byte, error) {
	if s.Data != nil {
		b, err := fs.ReadFile(s.Data, name)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read trace %s: %w", name, err)
		}
	}
	if s.Embedded == nil {
		return nil, fmt.Errorf("read trace %s: %w", name, fs.ErrNotExist)
	}
	b, err := fs.ReadFile(s.Embedded, name)
	if err != nil {
		return nil, fmt.Errorf("read trace %s: %w", name, err)
	}
	return b, nil
}

// binding ties one resource's demand to a trace: demand = request × scale ×
// trace(t + offset). A nil trace means a constant fraction (scale).
type binding struct {
	tr     *Trace
	scale  float64
	offset time.Duration
}

func (b binding) at(d time.Duration) float64 {
	if b.tr == nil {
		return b.scale
	}
	return b.scale * b.tr.At(d+b.offset)
}

// groupLoad is a task group's demand model. jitter spreads allocations of the
// group over the traces so they do not move in lockstep.
type groupLoad struct {
	cpu, mem, iops binding
	jitter         time.Duration
	// reads is the fraction of the group's IOPS that are disk reads.
	reads float64
}

// DefaultReadShare is the fraction of a group's IOPS counted as disk reads
// in the node_exporter-style counters when its scenario or meta does not
// say (the rest are writes): neither reads nor writes dominate.
const DefaultReadShare = 0.5

// Default demand of groups registered without a load binding: a tenth of the
// CPU request, a quarter of the memory request, no IOPS.
var defaultLoad = groupLoad{
	cpu:   binding{scale: 0.10},
	mem:   binding{scale: 0.25},
	iops:  binding{scale: 0},
	reads: DefaultReadShare,
}

// computeLoad sets every running allocation's usage from its traces at the
// current time, sums it per node, works out CPU throttling where demand
// exceeds capacity, and accumulates the minute's ground truth. dt is the
// length of the tick that just ended.
func (c *Cluster) computeLoad(dt time.Duration) {
	for _, n := range c.nodes {
		n.demCPU, n.demMem, n.demIOPS, n.demReads, n.surge, n.services = 0, 0, 0, 0, 1, 0
	}
	kept := c.surges[:0]
	for _, s := range c.surges {
		if !c.now.Before(s.until) {
			continue
		}
		kept = append(kept, s)
		for _, n := range c.nodes {
			if s.ev.matchNode(n) {
				n.surge *= s.ev.Factor
			}
		}
	}
	c.surges = kept
	elapsed := c.now.Sub(c.sc.Start)
	live := c.live[:0]
	for _, a := range c.live {
		if a.clientTerminal() {
			continue
		}
		live = append(live, a)
		if a.client != allocRunning {
			a.cpu, a.mem, a.iops = 0, 0, 0
			continue
		}
		n, g := a.node, a.grp
		d := elapsed + a.phase
		a.cpu = float64(a.reqCPU) * g.load.cpu.at(d) * n.surge
		a.served = a.cpu
		a.mem = float64(g.mem) * g.load.mem.at(d)
		a.iops = float64(g.iops) * g.load.iops.at(d) * n.surge
		n.demCPU += a.cpu
		n.demMem += a.mem
		n.demIOPS += a.iops
		n.demReads += a.iops * g.load.reads
		if a.job.typ == api.JobTypeService && !g.idle {
			n.services++
		}
	}
	clear(c.live[len(live):])
	c.live = live
	secs := dt.Seconds()
	sloFactor := c.sc.SLO.factor()
	for _, n := range c.nodes {
		n.throttle = 0
		if n.demCPU > float64(n.cpu) {
			n.throttle = 1 - float64(n.cpu)/n.demCPU
		}
		if n.status == api.NodeStatusReady {
			n.hostUptime += dt
		}
		if secs <= 0 || c.opts.SkipNodeMinutes {
			continue
		}
		m := &n.minuteAcc
		m.secs += secs
		m.cpu += n.demCPU * secs
		m.mem += n.demMem * secs
		m.iops += n.demIOPS * secs
		m.cpuPeak = math.Max(m.cpuPeak, n.demCPU)
		m.memPeak = math.Max(m.memPeak, n.demMem)
		m.iopsPeak = math.Max(m.iopsPeak, n.demIOPS)
		if n.throttle > 0 {
			m.throttledSecs += secs
			m.unservedCPU += (n.demCPU - float64(n.cpu)) * secs
		}
		if n.demMem > float64(n.mem) {
			m.memPressureSecs += secs
		}
		memOver := n.demMem > float64(n.mem)
		if n.iops > 0 && n.demIOPS > float64(n.iops) {
			m.iopsOverSecs += secs
			m.congestedSecs += secs
		} else if n.throttle > 0 || memOver {
			m.congestedSecs += secs
		}
		lf := latencyFactor(n.demCPU / float64(n.cpu))
		m.latency += lf * secs
		if lf >= sloFactor || memOver {
			m.sloSecs += float64(n.services) * secs
		}
		switch n.status {
		case api.NodeStatusReady:
			m.readySecs += secs
		case api.NodeStatusInit:
			m.bootSecs += secs
		}
	}
	periods := float64(dt / (100 * time.Millisecond)) // CFS periods of 100ms
	for _, n := range c.nodes {
		if n.throttle > 0 {
			shareCPU(n)
			if dt > 0 {
				for _, a := range n.allocs {
					if a.client == allocRunning && a.cpu > a.served {
						f := 1 - a.served/a.cpu
						a.thrPeriods += periods * f
						a.thrNS += float64(dt) * f
					}
				}
			}
		}
		served := n.demIOPS
		if n.iops > 0 {
			served = math.Min(served, float64(n.iops))
		}
		// Served IOPS split as the demand does: each allocation's own
		// share of reads.
		share := DefaultReadShare
		if n.demIOPS > 0 {
			share = n.demReads / n.demIOPS
		}
		n.ioReads += served * share * secs
		n.ioWrites += served * (1 - share) * secs
	}
}

// shareCPU splits a contended node's CPU among its running allocations the
// way CPU shares do: each gets capacity in proportion to its CPU request,
// and what an allocation below its share leaves unused goes to the others
// (water-filling). Allocations above their share are throttled.
func shareCPU(n *node) {
	var run []*alloc
	for _, a := range n.allocs {
		if a.client == allocRunning && a.cpu > 0 {
			run = append(run, a)
		}
	}
	left := float64(n.cpu)
	for len(run) > 0 {
		var weight float64
		for _, a := range run {
			weight += float64(max(a.reqCPU, 1))
		}
		capRound := left
		next := run[:0]
		for _, a := range run {
			if fair := capRound * float64(max(a.reqCPU, 1)) / weight; a.cpu <= fair {
				a.served = a.cpu
				left -= a.cpu
				continue
			}
			next = append(next, a)
		}
		if len(next) == len(run) {
			for _, a := range next {
				a.served = capRound * float64(max(a.reqCPU, 1)) / weight
			}
			return
		}
		run = next
	}
}
