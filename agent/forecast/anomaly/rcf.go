package anomaly

import (
	"math"
	"math/rand/v2"
)

// RCFOptions tune the random cut forest. The zero value means the
// defaults, the usual ones of streaming random cut forests.
type RCFOptions struct {
	// Trees in the forest (default 50).
	Trees int
	// Samples each tree holds (default 256).
	Samples int
	// Shingle is how many consecutive points make one point of the forest
	// (default 8).
	Shingle int
	// Horizon: once a tree is full, a new point replaces a random one of
	// its samples with probability Samples/Horizon, so a tree holds a
	// sample of about the last Horizon points (default 2016: a week of
	// 5-minute data).
	Horizon int
	// Seed makes the forest's random choices reproducible.
	Seed uint64
}

func (o RCFOptions) withDefaults() RCFOptions {
	if o.Trees <= 0 {
		o.Trees = 50
	}
	if o.Samples <= 1 {
		o.Samples = 256
	}
	if o.Shingle <= 0 {
		o.Shingle = 8
	}
	if o.Horizon < o.Samples {
		o.Horizon = max(2016, o.Samples)
	}
	return o
}

// RCF is a robust random cut forest (Guha et al., ICML 2016) over
// shingles, online: each new shingle is inserted in every tree, its
// collusive displacement (how many points its presence separates from the
// rest, relative to its own subtree) is averaged over the trees, and it is
// kept as a sample or removed again. It is one of the candidates foreshape's
// detector was chosen among (see Detectors); its cost is about Trees times
// the tree depth per point, and it holds Trees·Samples shingles.
type RCF struct {
	opts  RCFOptions
	rng   *rand.Rand
	trees []rcfTree
	sh    []float64 // the last Shingle points
	n     int
}

// NewRCF returns an empty forest.
func NewRCF(opts RCFOptions) *RCF {
	o := opts.withDefaults()
	f := &RCF{opts: o, rng: rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15)), trees: make([]rcfTree, o.Trees)}
	for i := range f.trees {
		f.trees[i] = rcfTree{d: o.Shingle, root: -1, slots: make([]int32, 0, o.Samples)}
	}
	return f
}

// Displacement adds the next point and returns the mean collusive
// displacement of the shingle it completes (NaN until the first shingle is
// complete and the forest holds a sample). NaN and infinite points are
// skipped.
func (f *RCF) Displacement(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return math.NaN()
	}
	v = math.Max(-maxMagnitude, math.Min(maxMagnitude, v))
	f.sh = append(f.sh, v)
	if len(f.sh) > f.opts.Shingle {
		f.sh = f.sh[1:]
	}
	if len(f.sh) < f.opts.Shingle {
		return math.NaN()
	}
	f.n++
	var sum float64
	scored := 0
	for i := range f.trees {
		t := &f.trees[i]
		leaf := t.insert(f.sh, f.rng)
		if t.size > 1 {
			sum += t.codisp(leaf)
			scored++
		}
		switch {
		case len(t.slots) < f.opts.Samples:
			t.slots = append(t.slots, leaf)
		case f.rng.Float64() < float64(f.opts.Samples)/float64(f.opts.Horizon):
			j := f.rng.IntN(len(t.slots))
			t.remove(t.slots[j])
			t.slots[j] = leaf
		default:
			t.remove(leaf)
		}
	}
	if scored == 0 {
		return math.NaN()
	}
	return sum / float64(scored)
}

// rcfNode is a tree node: a leaf holds a point, an internal node a cut.
// Every node keeps its bounding box and the number of points below it.
type rcfNode struct {
	parent, left, right int32 // -1: none; a leaf has no children
	dim                 int32
	cut                 float64
	n                   int32
	lo, hi              []float64
}

type rcfTree struct {
	d     int
	nodes []rcfNode
	free  []int32
	root  int32
	size  int
	slots []int32 // the leaves of the samples kept
}

func (t *rcfTree) alloc() int32 {
	if k := len(t.free); k > 0 {
		i := t.free[k-1]
		t.free = t.free[:k-1]
		return i
	}
	t.nodes = append(t.nodes, rcfNode{lo: make([]float64, t.d), hi: make([]float64, t.d)})
	return int32(len(t.nodes) - 1)
}

func (t *rcfTree) leaf(x []float64) int32 {
	i := t.alloc()
	nd := &t.nodes[i]
	nd.parent, nd.left, nd.right, nd.n = -1, -1, -1, 1
	copy(nd.lo, x)
	copy(nd.hi, x)
	return i
}

// insert adds x and returns its leaf. Going down from the root, a random
// cut of the box extended by x, chosen with probability proportional to
// each dimension's span, either separates x from the node's points (x
// gets a new leaf beside the node) or falls inside the node's box (go on
// down the side of the node's own cut that x lies on).
func (t *rcfTree) insert(x []float64, rng *rand.Rand) int32 {
	t.size++
	lf := t.leaf(x)
	if t.root < 0 {
		t.root = lf
		return lf
	}
	node := t.root
	for {
		nd := &t.nodes[node]
		var span float64
		for k := 0; k < t.d; k++ {
			span += math.Max(nd.hi[k], x[k]) - math.Min(nd.lo[k], x[k])
		}
		dim, cut := -1, 0.0
		if span > 0 {
			r := rng.Float64() * span
			for k := 0; k < t.d; k++ {
				lo, hi := math.Min(nd.lo[k], x[k]), math.Max(nd.hi[k], x[k])
				if r < hi-lo || k == t.d-1 {
					dim, cut = k, lo+math.Min(r, hi-lo)
					break
				}
				r -= hi - lo
			}
		}
		leafNode := nd.left < 0
		separates := dim >= 0 && ((x[dim] <= cut && cut < nd.lo[dim]) || (x[dim] > cut && cut >= nd.hi[dim]))
		if !separates && leafNode {
			// x equals the leaf's point (no cut separates them): pair
			// them under a node whose cut sends x to the right.
			dim, cut = 0, nd.lo[0]
			separates = true
		}
		if separates {
			in := t.alloc()
			nd = &t.nodes[node] // alloc may have moved the slice
			parent := nd.parent
			I := &t.nodes[in]
			I.parent, I.dim, I.cut, I.n = parent, int32(dim), cut, nd.n+1
			if x[dim] <= cut {
				I.left, I.right = lf, node
			} else {
				I.left, I.right = node, lf
			}
			for k := 0; k < t.d; k++ {
				I.lo[k] = math.Min(nd.lo[k], x[k])
				I.hi[k] = math.Max(nd.hi[k], x[k])
			}
			nd.parent = in
			t.nodes[lf].parent = in
			if parent < 0 {
				t.root = in
				return lf
			}
			P := &t.nodes[parent]
			if P.left == node {
				P.left = in
			} else {
				P.right = in
			}
			for a := parent; a >= 0; a = t.nodes[a].parent {
				A := &t.nodes[a]
				A.n++
				for k := 0; k < t.d; k++ {
					A.lo[k] = math.Min(A.lo[k], x[k])
					A.hi[k] = math.Max(A.hi[k], x[k])
				}
			}
			return lf
		}
		if x[nd.dim] <= nd.cut {
			node = nd.left
		} else {
			node = nd.right
		}
	}
}

// remove deletes the leaf: its sibling takes its parent's place.
func (t *rcfTree) remove(lf int32) {
	t.size--
	parent := t.nodes[lf].parent
	t.free = append(t.free, lf)
	if parent < 0 {
		t.root = -1
		return
	}
	P := t.nodes[parent]
	sib := P.left
	if sib == lf {
		sib = P.right
	}
	gp := P.parent
	t.free = append(t.free, parent)
	t.nodes[sib].parent = gp
	if gp < 0 {
		t.root = sib
		return
	}
	G := &t.nodes[gp]
	if G.left == parent {
		G.left = sib
	} else {
		G.right = sib
	}
	for a := gp; a >= 0; a = t.nodes[a].parent {
		A := &t.nodes[a]
		A.n--
		L, R := &t.nodes[A.left], &t.nodes[A.right]
		for k := 0; k < t.d; k++ {
			A.lo[k] = math.Min(L.lo[k], R.lo[k])
			A.hi[k] = math.Max(L.hi[k], R.hi[k])
		}
	}
}

// codisp is the leaf's collusive displacement: the largest, over its
// ancestors, of the sibling's size over the size of the subtree holding
// the leaf.
func (t *rcfTree) codisp(lf int32) float64 {
	var best float64
	for node := lf; t.nodes[node].parent >= 0; node = t.nodes[node].parent {
		P := &t.nodes[t.nodes[node].parent]
		sib := P.left
		if sib == node {
			sib = P.right
		}
		if r := float64(t.nodes[sib].n) / float64(t.nodes[node].n); r > best {
			best = r
		}
	}
	return best
}
