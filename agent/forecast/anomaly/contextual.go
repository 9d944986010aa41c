package anomaly

import (
	"math"
	"slices"
)

// Contextual is the Contextual Anomaly Detector, open-source edition
// (CAD OSE, Mikhail Smirnov, 2016; one of the detectors of the Numenta
// Anomaly Benchmark, "contextOSE"), written for foreshape from the
// algorithm's description and NAB's reference edition.
//
// Each value is quantised to one of 2^Bits levels over the range the
// series has shown so far, and the level's binary digits become facts
// (digit position, digit value). A context is a pair of semi-contexts: a
// left one, a set of facts of the previous step (its sensor facts and the
// contexts that were active then), and a right one, a set of facts of the
// step that followed. The detector learns contexts online: at every step
// the whole (previous step, this step) pair is a context, and so are the
// overlaps of this pair with contexts learnt before. A context predicts
// when all its left facts held at the previous step and is active when its
// right facts hold now; the most used active contexts (MaxActive) join the
// next step's left facts, so contexts chain into longer ones.
//
// The raw anomaly score of a step is the mean of the share of predicting
// contexts that did not come true and the share of this step's new
// contexts that were really new: 0 when the series does what it did
// before, near 1 when nothing it did before predicts this. As in CAD OSE,
// a score is reported (Onset) only when no score of the previous Rest
// steps reached BaseThreshold, so one incident is reported once.
//
// The memory grows with the contexts learnt; once MaxContexts are held
// the detector forgets them all and learns afresh (see ContextOptions),
// so its memory is bounded whatever the length of the series. It is not
// safe for concurrent use.
type Contextual struct {
	opts ContextOptions

	// The learnt range (running minimum and maximum).
	lo, hi float64
	seen   bool

	ops       contextOperator
	left      []uint32 // the previous step's left facts, sorted
	index     int
	lastHigh  int // index of the last raw score >= BaseThreshold
	maxLevels float64
	resets    int
	keys      []string // scratch
}

// ContextOptions tune the contextual detector. The zero value means the
// defaults, which are CAD OSE's as NAB runs it (its rest period aside: see
// Rest).
type ContextOptions struct {
	// Bits is the number of binary digits of a level: 2^Bits levels
	// (default 3).
	Bits int
	// BaseThreshold is the raw score that starts a rest period (default
	// 0.75).
	BaseThreshold float64
	// Rest is how many steps after a raw score of at least BaseThreshold
	// report no score (default 150: NAB gives CAD OSE a fifth of the
	// probationary period, 150 points on files of 5,000 points or more).
	Rest int
	// MaxLeft is the largest overlap (in facts) of a left semi-context
	// that makes a new context (default 7).
	MaxLeft int
	// MaxActive is how many active contexts join the next step's facts
	// (default 15).
	MaxActive int
	// MaxContexts bounds the contexts held (default 1<<16); reaching it
	// makes the detector forget and learn afresh.
	MaxContexts int

	// Range, when set, is the range values are quantised over instead of
	// the learnt one: NAB gives its detectors the file's minimum and
	// maximum, which an online detector cannot know (for checking this
	// implementation against NAB's published outputs only).
	Range *[2]float64
}

// Defaults for ContextOptions.
const (
	DefaultContextBits        = 3
	DefaultContextBase        = 0.75
	DefaultContextRest        = 150
	DefaultContextMaxLeft     = 7
	DefaultContextMaxActive   = 15
	DefaultContextMaxContexts = 1 << 16
)

func (o ContextOptions) withDefaults() ContextOptions {
	if o.Bits <= 0 || o.Bits > 16 {
		o.Bits = DefaultContextBits
	}
	if !(o.BaseThreshold > 0) {
		o.BaseThreshold = DefaultContextBase
	}
	if o.Rest <= 0 {
		o.Rest = DefaultContextRest
	}
	if o.MaxLeft <= 0 {
		o.MaxLeft = DefaultContextMaxLeft
	}
	if o.MaxActive <= 0 {
		o.MaxActive = DefaultContextMaxActive
	}
	if o.MaxContexts <= 0 {
		o.MaxContexts = DefaultContextMaxContexts
	}
	return o
}

// NewContextual returns a contextual detector.
func NewContextual(opts ContextOptions) *Contextual {
	o := opts.withDefaults()
	c := &Contextual{opts: o, lastHigh: -1, maxLevels: math.Exp2(float64(o.Bits)) - 1}
	c.ops.init(o.MaxLeft, o.MaxContexts)
	if o.Range != nil {
		c.lo, c.hi, c.seen = o.Range[0], o.Range[1], true
	}
	return c
}

// neuronFact is added to a context's ID to make it a fact.
const neuronFact = 1 << 31

// Score returns the raw anomaly score of v (in [0, 1]) and the score
// reported (the raw score, or 0 within a rest period). A missing value
// (NaN or infinite) scores nothing and teaches nothing.
func (c *Contextual) Score(v float64) (raw, reported float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, 0
	}
	if c.opts.Range == nil {
		c.learnRange(v)
	}
	full := c.hi - c.lo
	if full == 0 {
		full = c.maxLevels
	}
	step := full / c.maxLevels
	level := int(math.Max(0, math.Min((v-c.lo)/step, c.maxLevels)))
	var facts [32]uint32
	sens := facts[:c.opts.Bits]
	for b := range sens {
		sens[b] = uint32(2*b + (level>>b)&1)
	}
	if len(c.ops.contexts) >= c.opts.MaxContexts {
		c.ops.init(c.opts.MaxLeft, c.opts.MaxContexts)
		c.left = c.left[:0]
		c.resets++
	}
	active, added := c.step(sens)
	raw = (1 - active + added) / 2
	if c.index-c.lastHigh > c.opts.Rest {
		reported = raw
	}
	if raw >= c.opts.BaseThreshold {
		c.lastHigh = c.index
	}
	c.index++
	return raw, reported
}

// step learns from this step's sensor facts (sorted, distinct) and returns
// the share of predicting contexts that came true and the share of
// potential new contexts that were new.
func (c *Contextual) step(sens []uint32) (active, added float64) {
	ops := &c.ops
	newZero := false
	if len(c.left) > 0 {
		newZero = ops.learn([]contextPair{{left: c.left, right: sens}}, true) > 0
	}
	act, selected, potential := ops.crossRight(sens, newZero)
	if selected > 0 {
		active = float64(len(act)) / float64(selected)
	}
	unique := 0
	if newZero {
		// The whole pair and the distinct potential contexts.
		c.keys = c.keys[:0]
		c.keys = append(c.keys, contextPair{left: c.left, right: sens}.key())
		for _, p := range potential {
			c.keys = append(c.keys, p.key())
		}
		slices.Sort(c.keys)
		unique = len(slices.Compact(c.keys))
	}

	// The most used active contexts join the next left facts.
	slices.SortFunc(act, func(i, j int32) int {
		a, b := ops.contexts[i], ops.contexts[j]
		if a.count != b.count {
			return a.count - b.count
		}
		if a.left != b.left {
			return int(a.left - b.left)
		}
		return int(a.right - b.right)
	})
	if len(act) > c.opts.MaxActive {
		act = act[len(act)-c.opts.MaxActive:]
	}
	n := ops.learn(potential, false)
	c.left = append(c.left[:0], sens...)
	for _, id := range act {
		c.left = append(c.left, neuronFact+uint32(id))
	}
	slices.Sort(c.left)
	ops.cross(0, c.left)
	if newZero {
		n++
		added = float64(n) / float64(unique)
	}
	return active, added
}

// contextPair is a potential context: its left and right facts.
type contextPair struct{ left, right []uint32 }

// key identifies the pair.
func (p contextPair) key() string {
	b := make([]byte, 0, 4*(len(p.left)+len(p.right))+1)
	for _, f := range p.left {
		b = append(b, byte(f), byte(f>>8), byte(f>>16), byte(f>>24))
	}
	b = append(b, '|')
	for _, f := range p.right {
		b = append(b, byte(f), byte(f>>8), byte(f>>16), byte(f>>24))
	}
	return string(b)
}

// semiContext is a set of facts, one side of contexts.
type semiContext struct {
	size    int      // its number of facts
	crossed []uint32 // the facts of the last crossing it holds
	// rights maps the right semi-contexts it is the left side of to their
	// context, in the order learnt (left semi-contexts only).
	rights   []rightContext
	rightIdx map[int32]int32
}

type rightContext struct{ right, context int32 }

// context is a learnt pair of semi-contexts.
type context struct {
	count       int   // how often it was active
	zero        bool  // it was a whole (previous step, this step) pair
	left, right int32 // its semi-contexts
}

// side holds one side's semi-contexts.
type side struct {
	byKey   map[string]int32
	semis   []semiContext
	byFact  map[uint32][]int32
	crossed []int32 // the semi-contexts the last crossing touched, in order learnt
}

// contextOperator is the context memory.
type contextOperator struct {
	maxLeft, maxContexts int
	sides                [2]side
	contexts             []context
	// fresh is the context the current step's whole pair created, which
	// takes no part in this step's predictions; 0 when none, as in the
	// reference edition (where context 0 is thereby never active).
	fresh int32
}

func (o *contextOperator) init(maxLeft, maxContexts int) {
	*o = contextOperator{maxLeft: maxLeft, maxContexts: maxContexts}
	for i := range o.sides {
		o.sides[i] = side{byKey: map[string]int32{}, byFact: map[uint32][]int32{}}
	}
}

func factsKey(f []uint32) string {
	b := make([]byte, 0, 4*len(f))
	for _, x := range f {
		b = append(b, byte(x), byte(x>>8), byte(x>>16), byte(x>>24))
	}
	return string(b)
}

// semi returns the semi-context of facts on side s, learning it if new.
func (o *contextOperator) semi(s int, facts []uint32) int32 {
	sd := &o.sides[s]
	k := factsKey(facts)
	if id, ok := sd.byKey[k]; ok {
		return id
	}
	id := int32(len(sd.semis))
	sd.byKey[k] = id
	sc := semiContext{size: len(facts)}
	if s == 0 {
		sc.rightIdx = map[int32]int32{}
	}
	sd.semis = append(sd.semis, sc)
	for _, f := range facts {
		sd.byFact[f] = append(sd.byFact[f], id)
	}
	return id
}

// learn stores the pairs as contexts and returns how many were new. A
// whole pair (zero) marks its context as one.
func (o *contextOperator) learn(pairs []contextPair, zero bool) int {
	added := 0
	for _, p := range pairs {
		l, r := o.semi(0, p.left), o.semi(1, p.right)
		ls := &o.sides[0].semis[l]
		if id, ok := ls.rightIdx[r]; ok {
			if zero {
				o.contexts[id].zero = true
				return 0
			}
			continue
		}
		if len(o.contexts) >= o.maxContexts {
			return added // full: learnt afresh at the next step
		}
		id := int32(len(o.contexts))
		ls.rightIdx[r] = id
		ls.rights = append(ls.rights, rightContext{right: r, context: id})
		o.contexts = append(o.contexts, context{zero: zero, left: l, right: r})
		added++
		if zero {
			o.fresh = id
			return added
		}
	}
	return added
}

// cross records, for every semi-context of side s, which of facts it
// holds.
func (o *contextOperator) cross(s int, facts []uint32) {
	sd := &o.sides[s]
	for _, id := range sd.crossed {
		sd.semis[id].crossed = sd.semis[id].crossed[:0]
	}
	sd.crossed = sd.crossed[:0]
	for _, f := range facts {
		for _, id := range sd.byFact[f] {
			sc := &sd.semis[id]
			if len(sc.crossed) == 0 {
				sd.crossed = append(sd.crossed, id)
			}
			sc.crossed = append(sc.crossed, f)
		}
	}
	slices.Sort(sd.crossed)
}

// crossRight crosses the right semi-contexts with this step's facts and
// returns the contexts active now, how many contexts predicted, and the
// potential new contexts: the overlaps of this step's pair with learnt
// whole pairs (only when this step's whole pair was new).
func (o *contextOperator) crossRight(facts []uint32, newZero bool) (active []int32, selected int, potential []contextPair) {
	o.cross(1, facts)
	left, right := &o.sides[0], &o.sides[1]
	for _, lid := range left.crossed {
		ls := &left.semis[lid]
		full := len(ls.crossed) == ls.size
		for _, rc := range ls.rights {
			if rc.context == o.fresh {
				continue
			}
			ctx := &o.contexts[rc.context]
			rs := &right.semis[rc.right]
			switch {
			case full:
				selected++
				if len(rs.crossed) == 0 {
					continue
				}
				if len(rs.crossed) == rs.size {
					ctx.count++
					active = append(active, rc.context)
				} else if ctx.zero && newZero && len(ls.crossed) <= o.maxLeft {
					potential = append(potential, contextPair{left: ls.crossed, right: rs.crossed})
				}
			case ctx.zero && newZero && len(rs.crossed) > 0 && len(ls.crossed) <= o.maxLeft:
				potential = append(potential, contextPair{left: ls.crossed, right: rs.crossed})
			}
		}
	}
	o.fresh = 0
	return active, selected, potential
}

// Contexts is the number of contexts held; Resets how often the memory
// was full and forgotten.
func (c *Contextual) Contexts() (held, resets int) { return len(c.ops.contexts), c.resets }

// learnRange widens the range levels are quantised over to hold v: the
// range learnt is the smallest and largest value seen so far.
func (c *Contextual) learnRange(v float64) {
	if !c.seen {
		c.lo, c.hi, c.seen = v, v, true
	}
	c.lo, c.hi = math.Min(c.lo, v), math.Max(c.hi, v)
}
