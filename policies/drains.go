package policies

import (
	"fmt"
	"path"
	"slices"
	"time"
	"unicode/utf8"
)

// DrainOverlap is what two drain schedules that take some nodes at once
// share: a locality each lists (A of the first, B of the second) that
// holds nodes of the other's, Shared the locality of the nodes both hold,
// and the first pair of their windows that overlap.
type DrainOverlap struct {
	A, B             Locality
	Shared           Locality
	WindowA, WindowB Window
}

// overlapHorizon is how long after the later of two crons' first starts
// DrainsOverlap reads their windows for: a leap year, every day of the
// week and of the month. Each cron gives at most MaxWindows windows of
// it (a week of one a minute), which reaches an overlap of two frequent
// ones.
const overlapHorizon = 366 * 24 * time.Hour

// DrainsOverlap reports whether the drain schedules a and b take some
// nodes at once: a locality of each that share nodes (one within the
// other, "dc2" and "dc2/*/batch", or overlapping, "dc2/web" and
// "*/*/batch"), node globs that some name matches both of (either
// unset, or two that meet: "dc2-*" and "*-rack-a-*"), and windows that
// overlap in time.
//
// The windows are read from a fixed instant, not a clock: from the later
// of the two crons' first starts on or after 2000-01-01 (cronProbe), less
// the longer duration, over overlapHorizon. So the answer is the same
// whenever the policies load, and the windows named are the first that
// overlap from that instant: an example of a clash the crons repeat, not
// necessarily the next one. Crons that overlap only further apart than a
// year of windows are not found.
func DrainsOverlap(a, b *Schedule) (DrainOverlap, bool) {
	if a.Action != ActionDrain || b.Action != ActionDrain || a.Expr == nil || b.Expr == nil || a.Duration <= 0 || b.Duration <= 0 {
		return DrainOverlap{}, false
	}
	o, found := sharedLocality(a.Localities, b.Localities)
	if !found || !globsMeet(a.Nodes, b.Nodes) {
		return DrainOverlap{}, false
	}
	firstA, firstB := a.Next(cronProbe), b.Next(cronProbe)
	if firstA.IsZero() || firstB.IsZero() {
		return DrainOverlap{}, false
	}
	from := firstA
	if firstB.After(from) {
		from = firstB
	}
	from = from.Add(-max(a.Duration, b.Duration))
	wa, wb := a.Windows(from, from.Add(overlapHorizon)), b.Windows(from, from.Add(overlapHorizon))
	for i, j := 0, 0; i < len(wa) && j < len(wb); {
		switch {
		case !wa[i].End.After(wb[j].Start):
			i++
		case !wb[j].End.After(wa[i].Start):
			j++
		default:
			o.WindowA, o.WindowB = wa[i], wb[j]
			return o, true
		}
	}
	return DrainOverlap{}, false
}

// SharedNodes names the nodes the drains a and b of the overlap share:
// the locality, and the globs that narrow it ("dc2 matching \"dc2-*\"").
func (o DrainOverlap) SharedNodes(a, b *Schedule) string {
	out := o.Shared.String()
	var named []string
	for _, g := range []string{a.Nodes, b.Nodes} {
		if g != "" && !slices.Contains(named, g) {
			named = append(named, g)
		}
	}
	switch len(named) {
	case 1:
		out += fmt.Sprintf(" matching %q", named[0])
	case 2:
		out += fmt.Sprintf(" matching %q and %q", named[0], named[1])
	}
	return out
}

// sharedLocality finds the first locality of bs that shares nodes with
// one of as, and that one: pairwise for short lists (most are one
// locality), else through an index of as (nesting), as a list may hold
// thousands.
func sharedLocality(as, bs []Locality) (DrainOverlap, bool) {
	if len(as)*len(bs) <= 64 {
		for _, b := range bs {
			for _, a := range as {
				if a.SharesNodes(b) {
					return DrainOverlap{A: a, B: b, Shared: meet(a, b)}, true
				}
			}
		}
		return DrainOverlap{}, false
	}
	var idx nesting
	for _, l := range as {
		idx.add(l)
	}
	for _, b := range bs {
		if a, _, ok := idx.find(b); ok {
			return DrainOverlap{A: a, B: b, Shared: meet(a, b)}, true
		}
	}
	return DrainOverlap{}, false
}

// SharesNodes reports whether a node may be in both l and o: no part
// both name holds two values ("dc2/web" and "*/*/batch" share
// dc2/web/batch; "dc2/web" and "dc2/batch" share none).
func (l Locality) SharesNodes(o Locality) bool {
	a, b := canonical(l), canonical(o)
	part := func(x, y string) bool { return x == "" || y == "" || x == y }
	return part(a.Datacenter, b.Datacenter) && part(a.NodePool, b.NodePool) && part(a.NodeClass, b.NodeClass)
}

// Windows says which windows of the overlap clash, in UTC: "Sat
// 2000-01-01 08:00–10:00 UTC" for the first, "09:00–10:00 UTC" for the
// second, each time with its date when it falls on another day than the
// window's start (the second's start, than the first's).
func (o DrainOverlap) Windows() (a, b string) {
	const day = "Mon 2006-01-02"
	at := func(t, than time.Time) string {
		if t.Format(day) == than.Format(day) {
			return t.Format("15:04")
		}
		return t.Format(day + " 15:04")
	}
	wa, wb := o.WindowA, o.WindowB
	return fmt.Sprintf("%s–%s UTC", wa.Start.Format(day+" 15:04"), at(wa.End, wa.Start)),
		fmt.Sprintf("%s–%s UTC", at(wb.Start, wa.Start), at(wb.End, wb.Start))
}

// globsMeet reports whether some node name matches both path.Match globs
// a and b, "" matching every name. Exact for literals, '?', '*' and a
// class against a literal; two classes, or a class against '?' or '*',
// are taken to meet (what a name may hold there is not worked out), so a
// "no" is always right.
func globsMeet(a, b string) bool {
	if a == "" || b == "" {
		return true
	}
	ta, oka := globTokens(a)
	tb, okb := globTokens(b)
	if !oka || !okb {
		return true
	}
	type pos struct{ i, j int }
	seen := map[pos]bool{}
	var meet func(i, j int) bool
	meet = func(i, j int) bool {
		if i == len(ta) && j == len(tb) {
			return true
		}
		if seen[pos{i, j}] {
			return false // explored already, and it did not meet
		}
		seen[pos{i, j}] = true
		if i < len(ta) && ta[i].star {
			// The star matches nothing more, or the character b's next
			// token matches.
			if meet(i+1, j) || j < len(tb) && !tb[j].star && tb[j].notSlash() && meet(i, j+1) {
				return true
			}
		}
		if j < len(tb) && tb[j].star {
			if meet(i, j+1) || i < len(ta) && !ta[i].star && ta[i].notSlash() && meet(i+1, j) {
				return true
			}
		}
		return i < len(ta) && j < len(tb) && !ta[i].star && !tb[j].star && ta[i].meets(tb[j]) && meet(i+1, j+1)
	}
	return meet(0, 0)
}

// globToken is one element of a path.Match glob: a star, or what matches
// one character: a literal, '?' (any), or a class (its source, "[a-c]").
type globToken struct {
	star, any bool
	class     string
	lit       rune
}

// notSlash reports whether t matches some character other than '/', as
// a star must.
func (t globToken) notSlash() bool { return t.any || t.class != "" || t.lit != '/' }

// meets reports whether some character matches both t and u, neither a
// star.
func (t globToken) meets(u globToken) bool {
	switch {
	case t.class == "" && !t.any && u.class == "" && !u.any:
		return t.lit == u.lit
	case t.class == "" && !t.any:
		return u.matchesLit(t.lit)
	case u.class == "" && !u.any:
		return t.matchesLit(u.lit)
	}
	return true
}

func (t globToken) matchesLit(r rune) bool {
	if t.any {
		return r != '/'
	}
	ok, _ := path.Match(t.class, string(r))
	return ok
}

// globTokens splits a glob path.Match takes; false for one it refuses.
func globTokens(g string) ([]globToken, bool) {
	if _, err := path.Match(g, ""); err != nil {
		return nil, false
	}
	var out []globToken
	for i := 0; i < len(g); {
		switch g[i] {
		case '*':
			if len(out) == 0 || !out[len(out)-1].star {
				out = append(out, globToken{star: true})
			}
			i++
		case '?':
			out = append(out, globToken{any: true})
			i++
		case '[':
			// As path.Match reads it: a ']' closes the class once it
			// holds a range; '\\' escapes the next character.
			j, ranges := i+1, 0
			if j < len(g) && g[j] == '^' {
				j++
			}
			for j < len(g) && (g[j] != ']' || ranges == 0) {
				if g[j] == '\\' {
					j++
				}
				_, n := utf8.DecodeRuneInString(g[min(j, len(g)):])
				j += max(n, 1)
				if j < len(g) && g[j] == '-' {
					j++
					if j < len(g) && g[j] == '\\' {
						j++
					}
					_, n := utf8.DecodeRuneInString(g[min(j, len(g)):])
					j += max(n, 1)
				}
				ranges++
			}
			if j >= len(g) {
				return nil, false
			}
			out = append(out, globToken{class: g[i : j+1]})
			i = j + 1
		case '\\':
			i++
			fallthrough
		default:
			r, n := utf8.DecodeRuneInString(g[i:])
			out = append(out, globToken{lit: r})
			i += n
		}
	}
	return out, true
}
