package sim

// implicitTarget stands for every value a spread block's targets do not
// name, as in Nomad.
const implicitTarget = "*"

// spreadState is what Nomad's SpreadIterator keeps across the task groups
// of one evaluation (scheduler/feasible/spread.go; the scheduler builds one
// stack per evaluation): the sum of the spread weights of every group it
// has selected a node for so far, each group's own blocks and the job's,
// counted when the group is first selected (an in-place update's check
// selects too), and the lowest boost a target has given.
type spreadState struct {
	weights int
	lowest  float64
	seen    map[string]bool
}

func newSpreadState() *spreadState {
	return &spreadState{lowest: -1}
}

// spreadScorer is Nomad's SpreadIterator for one group during one
// evaluation: for each spread block, the group's allocations per value of
// its attribute; the score of a node is the sum over blocks of
//
//   - with targets: (desired - (used+1)) / desired times the block's weight
//     over the weights summed so far in the evaluation (spreadState),
//     where desired is the value's percent of the group's count (values no
//     target names share what the targets leave, as "*"; none left: -1; a
//     target of 0%: the lowest boost seen so far, -1 at first);
//   - without targets (even spread): 0 while nothing is placed, +1 for a
//     value the group does not use yet, (min - used) / min for a value used
//     more than the least used one, -1 for a least used one when all are
//     even, else (max - min) / min (the node's own value looked up, even
//     where a block's targets count it as "*");
//   - -1 when the node lacks the attribute.
//
// A score of 0 is not averaged in.
type spreadScorer struct {
	j      *job
	g      *group
	blocks []spreadBlock
	st     *spreadState
	// info holds, per attribute, the desired count per value and the
	// weight of the group's block for it (the job's block when both name
	// the attribute, as in Nomad).
	info map[string]*spreadInfo
	// used counts, per block, the group's live allocations per value.
	used []valueUse
}

type spreadInfo struct {
	weight  int
	desired map[string]float64
}

// valueUse is how many of a group's allocations have each value of a
// block's attribute, with the least and the most of those counts (every
// count is positive).
type valueUse struct {
	by     map[string]int
	lo, hi int
}

func newSpreadScorer(j *job, g *group, st *spreadState) *spreadScorer {
	s := &spreadScorer{j: j, g: g, blocks: g.spreads, st: st, info: map[string]*spreadInfo{}}
	// Nomad builds the desired counts from the group's blocks, then the
	// job's: a job block on the same attribute replaces the group's.
	var ordered []spreadBlock
	for _, b := range g.spreads {
		if !b.job {
			ordered = append(ordered, b)
		}
	}
	for _, b := range g.spreads {
		if b.job {
			ordered = append(ordered, b)
		}
	}
	weights := 0
	for _, b := range ordered {
		si := &spreadInfo{weight: b.weight, desired: map[string]float64{}}
		sum := 0.0
		for _, t := range b.targets {
			d := float64(float64(t.Percent) / 100 * float64(g.count))
			si.desired[t.Value] = d
			sum += d
		}
		if sum > 0 && sum < float64(g.count) {
			si.desired[implicitTarget] = float64(g.count) - sum
		}
		s.info[b.attr] = si
		weights += b.weight
	}
	if !st.seen[g.name] {
		if st.seen == nil {
			st.seen = map[string]bool{}
		}
		st.seen[g.name] = true
		st.weights += weights
	}
	return s
}

// value is the value n counts under for block b: its attribute's value,
// or "*" when b has targets and none names it.
func (b spreadBlock) value(n *node) (string, bool) {
	v, ok := resolve(n, b.attr)
	if !ok {
		return "", false
	}
	if len(b.targets) == 0 {
		return v, true
	}
	for _, t := range b.targets {
		if t.Value == v {
			return v, true
		}
	}
	return implicitTarget, true
}

// count recounts the group's live allocations per value of each block.
func (s *spreadScorer) count() {
	s.used = make([]valueUse, len(s.blocks))
	for i, b := range s.blocks {
		u := valueUse{by: map[string]int{}}
		for _, a := range s.j.allocs {
			if a.grp.name != s.g.name || a.terminal() {
				continue
			}
			if v, ok := b.value(a.node); ok {
				u.by[v]++
			}
		}
		u.bounds()
		s.used[i] = u
	}
}

// bounds sets lo and hi from the counts.
func (u *valueUse) bounds() {
	u.lo, u.hi = 0, 0
	for _, k := range u.by {
		if u.lo == 0 || k < u.lo {
			u.lo = k
		}
		if u.hi == 0 || k > u.hi {
			u.hi = k
		}
	}
}

// score is n's spread score; it lowers the evaluation's lowest boost as
// Nomad's does.
func (s *spreadScorer) score(n *node) float64 {
	total := 0.0
	for i, b := range s.blocks {
		v, ok := b.value(n)
		if !ok {
			total--
			continue
		}
		si := s.info[b.attr]
		if len(si.desired) == 0 {
			// Nomad looks the node's own value up, not the target it
			// counts under: a block with targets whose attribute the job's
			// even block overrides finds 0 for every value no target names.
			raw, _ := resolve(n, b.attr)
			total += evenSpreadBoost(s.used[i], raw)
			continue
		}
		desired, ok := si.desired[v]
		if !ok {
			if desired, ok = si.desired[implicitTarget]; !ok {
				total--
				continue
			}
		}
		if desired == 0 {
			total += s.st.lowest
			continue
		}
		boost := (desired - float64(s.used[i].by[v]+1)) / desired * float64(si.weight) / float64(s.st.weights)
		total += boost
		s.st.lowest = min(s.st.lowest, boost)
	}
	return total
}

// scoreInPlace scores the node of a, one of the group's live allocations,
// as Nomad's check of an in-place update does: a's own allocation is
// staged to stop, so it is not counted before the +1 of the placement.
// Only the lowest boost it may set matters.
func (s *spreadScorer) scoreInPlace(a *alloc) {
	for i, b := range s.blocks {
		if v, ok := b.value(a.node); ok {
			s.used[i].by[v]--
		}
	}
	s.score(a.node)
	for i, b := range s.blocks {
		if v, ok := b.value(a.node); ok {
			s.used[i].by[v]++
		}
	}
}

// evenSpreadBoost is Nomad's score of a value when a block has no targets,
// from the counts' least and most (what Nomad finds by scanning every
// value for each node it scores).
func evenSpreadBoost(u valueUse, v string) float64 {
	if len(u.by) == 0 {
		return 0
	}
	cur := u.by[v]
	switch {
	case cur != u.lo:
		return float64(u.lo-cur) / float64(u.lo)
	case u.lo == u.hi:
		return -1
	}
	return float64(u.hi-u.lo) / float64(u.lo)
}
