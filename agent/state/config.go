package state

import (
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// maxTierPoints bounds one tier's ring so a typo in a configuration cannot
// ask every series for gigabytes.
const maxTierPoints = 1 << 22

// Tier is one downsampling level of every series: a ring of Points buckets,
// each Step wide and aligned to the Unix epoch.
type Tier struct {
	Step   time.Duration
	Points int
}

// Retention is how far back the tier reaches: Step × Points.
func (t Tier) Retention() time.Duration { return t.Step * time.Duration(t.Points) }

// DefaultTiers are 1-minute points for a day, 5-minute points for 14 days and
// hourly points for 90 days.
func DefaultTiers() []Tier {
	return []Tier{
		{Step: time.Minute, Points: 24 * 60},
		{Step: 5 * time.Minute, Points: 14 * 24 * 12},
		{Step: time.Hour, Points: 90 * 24},
	}
}

// Config shapes the replicated state. It must be identical on every node of
// a cluster: it decides how samples fold into buckets, so two nodes with
// different tiers would hold different state for the same log. Restore
// refuses a snapshot whose tiers differ.
type Config struct {
	// Tiers from finest to coarsest; nil means DefaultTiers.
	Tiers []Tier
	// MaxSeries caps the number of series; samples that would create a
	// series beyond it are dropped (and counted as such). 0 means no cap.
	MaxSeries int
}

// withDefaults returns c with zero fields filled in.
func (c Config) withDefaults() Config {
	if c.Tiers == nil {
		c.Tiers = DefaultTiers()
	}
	c.Tiers = append([]Tier(nil), c.Tiers...)
	return c
}

// Validate reports whether the configuration can be used: at least one tier,
// positive steps strictly increasing from finest to coarsest, and between 1
// and 4,194,304 points per tier.
func (c Config) Validate() error {
	c = c.withDefaults()
	if len(c.Tiers) == 0 {
		return errors.New("state: config: no tiers")
	}
	for i, t := range c.Tiers {
		if t.Step <= 0 {
			return fmt.Errorf("state: config: tier %d: step %v is not positive", i, t.Step)
		}
		if t.Points < 1 || t.Points > maxTierPoints {
			return fmt.Errorf("state: config: tier %d: %d points, want 1..%d", i, t.Points, maxTierPoints)
		}
		if i > 0 && t.Step <= c.Tiers[i-1].Step {
			return fmt.Errorf("state: config: tier %d: step %v not coarser than tier %d's %v", i, t.Step, i-1, c.Tiers[i-1].Step)
		}
	}
	if c.MaxSeries < 0 {
		return fmt.Errorf("state: config: max series %d is negative", c.MaxSeries)
	}
	return nil
}

// BytesPerSeries is the most memory one series can cost with these tiers,
// excluding its key's and stale reason's string bytes. Rings never grow
// beyond their tiers; their pages are allocated when first written, so a
// series reaches this cost once its coarsest tier has filled (90 days with
// the default tiers) and a young series costs less.
//
//	16 bytes per bucket (mean, min, max as float32, count as uint32), in
//	  pages of 64 buckets (1 KiB), the last page rounded up
//	+ 8 bytes per page (its pointer) and 1 bit per page (ownership)
//	+ 16 bytes per tier (newest bucket index, in-use flag)
//	+ the series header and its map entry (about 250 bytes on 64-bit)
//
// With DefaultTiers that is 1,440 + 4,032 + 2,160 = 7,632 buckets in 120
// pages: 122,880 bytes of pages and 124,128 bytes in all (≈121.2 KiB), so
// 10,000 full series take about 1.16 GiB. A series' first sample costs its
// header (about 1.2 KiB) and one page per tier: about 4.3 KiB. While a
// snapshot is being persisted, a series changed meanwhile costs one extra
// page per tier it touched (copy-on-write), not a copy of the whole series.
func (c Config) BytesPerSeries() int {
	c = c.withDefaults()
	total := 0
	for _, t := range c.Tiers {
		total += t.Points
	}
	pages := (total + pageBuckets - 1) / pageBuckets
	n := int(unsafe.Sizeof(series{})) + seriesMapOverhead
	n += len(c.Tiers) * int(unsafe.Sizeof(tierHead{}))
	n += pages * (int(unsafe.Sizeof(page{})) + 8)
	n += (pages + 63) / 64 * 8
	return n
}

// seriesMapOverhead approximates one entry of the store's map from Key to
// *series: the key's two string headers, the pointer and the map's own
// bookkeeping.
const seriesMapOverhead = 2*16 + 8 + 16
