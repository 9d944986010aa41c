package state

import (
	"errors"
	"fmt"
	"slices"
	"strings"
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

// Profile gives the series of some localities their own tiers: a series
// whose locality starts with Prefix keeps Tiers instead of Config.Tiers. The
// agent's per-node ("node/…") and per-allocation-group ("group/…") series,
// used for staleness and operator visibility but never forecast, need hours
// of history rather than months; see DefaultProfiles.
type Profile struct {
	// Prefix is matched against the start of a series' locality, byte for
	// byte; it must not be empty.
	Prefix string
	// Tiers from finest to coarsest, under the same rules as Config.Tiers;
	// unlike Config.Tiers, nil is not replaced by defaults.
	Tiers []Tier
}

// BytesPerSeries is the most memory one series of this profile can cost; see
// Config.BytesPerSeries for what it counts. With DefaultProfiles' tiers (360
// one-minute buckets in 6 pages) it is 6,448 bytes (≈6.3 KiB).
func (p Profile) BytesPerSeries() int { return bytesPerSeries(p.Tiers) }

// DefaultProfiles keep 1-minute points for 6 hours, and nothing coarser, for
// per-node series ("node/<node ID>:…") and per-allocation-group series
// ("group/<namespace>/<job>/<group>:…"). They are not applied unless a Config
// names them, because they change the replicated state: every node of a
// cluster must use the same profiles, and a node restoring a snapshot taken
// without them refuses it.
func DefaultProfiles() []Profile {
	sixHours := func() []Tier { return []Tier{{Step: time.Minute, Points: 6 * 60}} }
	return []Profile{
		{Prefix: "node/", Tiers: sixHours()},
		{Prefix: "group/", Tiers: sixHours()},
	}
}

// Config shapes the replicated state. It must be identical on every node of
// a cluster: it decides how samples fold into buckets, so two nodes with
// different tiers or profiles would hold different state for the same log.
// Restore refuses a snapshot whose tiers or profiles differ.
type Config struct {
	// Tiers from finest to coarsest; nil means DefaultTiers. Series that no
	// profile matches keep these.
	Tiers []Tier
	// Profiles give the series whose locality starts with a profile's prefix
	// that profile's tiers; when several prefixes match, the longest wins.
	// nil means none: every series keeps Tiers. Their order does not matter
	// (Config returns them sorted by prefix).
	Profiles []Profile
	// MaxSeries caps the number of series; samples that would create a
	// series beyond it are dropped (and counted as such). 0 means no cap.
	MaxSeries int
}

// withDefaults returns c with zero fields filled in, as a deep copy with
// the profiles sorted by prefix.
func (c Config) withDefaults() Config {
	if c.Tiers == nil {
		c.Tiers = DefaultTiers()
	}
	c.Tiers = slices.Clone(c.Tiers)
	if c.Profiles != nil {
		ps := make([]Profile, len(c.Profiles))
		for i, p := range c.Profiles {
			ps[i] = Profile{Prefix: p.Prefix, Tiers: slices.Clone(p.Tiers)}
		}
		slices.SortStableFunc(ps, func(a, b Profile) int { return strings.Compare(a.Prefix, b.Prefix) })
		c.Profiles = ps
	}
	return c
}

// TiersFor returns the tiers a series of the given locality keeps: those of
// the profile with the longest prefix the locality starts with, or the
// default tiers.
func (c Config) TiersFor(locality string) []Tier {
	c = c.withDefaults()
	if i := matchProfile(c.Profiles, locality); i >= 0 {
		return c.Profiles[i].Tiers
	}
	return c.Tiers
}

// matchProfile returns the index of the profile with the longest prefix of
// locality, or -1.
func matchProfile(ps []Profile, locality string) int {
	best := -1
	for i, p := range ps {
		if strings.HasPrefix(locality, p.Prefix) && (best < 0 || len(p.Prefix) > len(ps[best].Prefix)) {
			best = i
		}
	}
	return best
}

// Validate reports whether the configuration can be used: at least one tier,
// positive steps strictly increasing from finest to coarsest, and between 1
// and 4,194,304 points per tier; the same for every profile's tiers, whose
// prefixes must be non-empty, at most 512 bytes (no longer locality exists)
// and distinct.
func (c Config) Validate() error {
	c = c.withDefaults()
	if err := validateTiers(c.Tiers); err != nil {
		return fmt.Errorf("state: config: %w", err)
	}
	for i, p := range c.Profiles {
		switch {
		case p.Prefix == "":
			return errors.New("state: config: profile with an empty prefix")
		case len(p.Prefix) > maxKeyPart:
			return fmt.Errorf("state: config: profile %.40q…: prefix longer than %d bytes", p.Prefix, maxKeyPart)
		case i > 0 && p.Prefix == c.Profiles[i-1].Prefix:
			return fmt.Errorf("state: config: profile %q given twice", p.Prefix)
		}
		if err := validateTiers(p.Tiers); err != nil {
			return fmt.Errorf("state: config: profile %q: %w", p.Prefix, err)
		}
	}
	if c.MaxSeries < 0 {
		return fmt.Errorf("state: config: max series %d is negative", c.MaxSeries)
	}
	return nil
}

func validateTiers(tiers []Tier) error {
	if len(tiers) == 0 {
		return errors.New("no tiers")
	}
	for i, t := range tiers {
		if t.Step <= 0 {
			return fmt.Errorf("tier %d: step %v is not positive", i, t.Step)
		}
		if t.Points < 1 || t.Points > maxTierPoints {
			return fmt.Errorf("tier %d: %d points, want 1..%d", i, t.Points, maxTierPoints)
		}
		if i > 0 && t.Step <= tiers[i-1].Step {
			return fmt.Errorf("tier %d: step %v not coarser than tier %d's %v", i, t.Step, i-1, tiers[i-1].Step)
		}
	}
	return nil
}

// BytesPerSeries is the most memory one series can cost with the default
// tiers (Tiers; see Profile.BytesPerSeries for a profile's series),
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
// pages: 122,880 bytes of pages and 124,136 bytes in all (≈121.2 KiB), so
// 10,000 full series take about 1.16 GiB. A series' first sample costs its
// header (about 1.2 KiB) and one page per tier: about 4.3 KiB. While a
// snapshot is being persisted, a series changed meanwhile costs one extra
// page per tier it touched (copy-on-write), not a copy of the whole series.
func (c Config) BytesPerSeries() int { return bytesPerSeries(c.withDefaults().Tiers) }

func bytesPerSeries(tiers []Tier) int {
	total := 0
	for _, t := range tiers {
		total += t.Points
	}
	pages := (total + pageBuckets - 1) / pageBuckets
	n := int(unsafe.Sizeof(series{})) + seriesMapOverhead
	n += len(tiers) * int(unsafe.Sizeof(tierHead{}))
	n += pages * (int(unsafe.Sizeof(page{})) + 8)
	n += (pages + 63) / 64 * 8
	return n
}

// seriesMapOverhead approximates one entry of the store's map from Key to
// *series: the key's two string headers, the pointer and the map's own
// bookkeeping.
const seriesMapOverhead = 2*16 + 8 + 16
