package global

import (
	"fmt"
	"sync"

	"gonum.org/v1/gonum/blas/blas64"
)

// nbeats is a stack of residual blocks in the N-BEATS style. Each block
// reads the residual input r, computes h1 = relu(r·W1 + b1) and
// h2 = relu(h1·W2 + b2), takes its backcast h2·Wb + bb off r for the next
// block and adds its forecast h2·Wf + bf to the output.
type nbeats struct {
	in, width, out int
	blocks         []nbBlock
	p              []float64
	// heads caches, per quantile column and number of knots, each
	// block's forecast weights and biases for that column of the first
	// knots only (forwardMedian).
	heads  sync.Map // headKey → [][2][]float64
	nknots int
}

func (n *nbeats) knots() int { return n.nknots }

// nbBlock holds views into the flat parameter vector: weights are row-major
// (inputs × outputs).
type nbBlock struct {
	w1, b1, w2, b2, wb, bb, wf, bf []float64
}

// nbSizes are the sizes of one block's parameters, in layout order.
func nbSizes(in, w, out int) []int {
	return []int{in * w, w, w * w, w, w * in, in, w * out, out}
}

func newNBeats(c Config, p []float64) (*nbeats, error) {
	in, w, out := c.inputs(), c.Width, c.outputs()
	per := 0
	for _, s := range nbSizes(in, w, out) {
		per += s
	}
	if p == nil {
		p = make([]float64, per*c.Blocks)
	}
	if len(p) != per*c.Blocks {
		return nil, fmt.Errorf("global: %d parameters for an nbeats of %d blocks, want %d", len(p), c.Blocks, per*c.Blocks)
	}
	n := &nbeats{in: in, width: w, out: out, p: p, nknots: len(c.Knots)}
	off := 0
	take := func(k int) []float64 {
		v := p[off : off+k : off+k]
		off += k
		return v
	}
	for b := 0; b < c.Blocks; b++ {
		s := nbSizes(in, w, out)
		n.blocks = append(n.blocks, nbBlock{take(s[0]), take(s[1]), take(s[2]), take(s[3]), take(s[4]), take(s[5]), take(s[6]), take(s[7])})
	}
	return n, nil
}

func (n *nbeats) params() []float64 { return n.p }

var impl = blas64.Implementation()

// addBias adds bias to every row of x (rows × len(bias)).
func addBias(x []float64, rows int, bias []float64) { addBiasRelu(x, rows, bias, false) }

// addBiasRelu adds bias to every row of x and then, with relu, applies
// relu: one pass, four elements at a time with AVX, each element rounded
// as the scalar add and comparison leave it.
func addBiasRelu(x []float64, rows int, bias []float64, relu bool) {
	n := len(bias)
	vec := 0
	if haveKernel {
		vec = n &^ 3
	}
	for r := 0; r < rows; r++ {
		row := x[r*n : (r+1)*n]
		if vec > 0 {
			addAVX(&row[0], &bias[0], vec, relu)
		}
		for i := vec; i < n; i++ {
			v := row[i] + bias[i]
			if relu && v < 0 {
				v = 0
			}
			row[i] = v
		}
	}
}

// colSum adds the column sums of x (rows × len(dst)) to dst.
func colSum(dst, x []float64, rows int) {
	n := len(dst)
	for r := 0; r < rows; r++ {
		for i, v := range x[r*n : (r+1)*n] {
			dst[i] += v
		}
	}
}

// relu sets the negative elements of x to +0 (-0 and NaN stay). With AVX
// four at a time, branch-free: about half the activations are negative,
// in no order a branch predictor could learn.
func relu(x []float64) {
	i := 0
	if haveKernel && len(x) >= 4 {
		i = len(x) &^ 3
		reluAVX(&x[0], i)
	}
	for ; i < len(x); i++ {
		if x[i] < 0 {
			x[i] = 0
		}
	}
}

// Cache layout, per block i: buffer 1+4i is the block's residual input,
// 2+4i h1, 3+4i h2, 4+4i its backcast.
func (n *nbeats) forward(x []float64, b int, out []float64, c *cache) {
	in, w := n.in, n.width
	clear(out[:b*n.out])
	copy(c.whole(1, b*in), x[:b*in])
	for i, blk := range n.blocks {
		ri := c.bufs[1+4*i][:b*in]
		h1 := c.whole(2+4*i, b*w)
		gemm(false, false, b, w, in, 1, ri, blk.w1, 0, h1)
		addBiasRelu(h1, b, blk.b1, true)
		h2 := c.whole(3+4*i, b*w)
		gemm(false, false, b, w, w, 1, h1, blk.w2, 0, h2)
		addBiasRelu(h2, b, blk.b2, true)
		// Forecast into out, backcast off the residual for the next block.
		gemm(false, false, b, n.out, w, 1, h2, blk.wf, 1, out)
		addBias(out[:b*n.out], b, blk.bf)
		if i < len(n.blocks)-1 {
			back := c.whole(4+4*i, b*in)
			gemm(false, false, b, in, w, 1, h2, blk.wb, 0, back)
			addBias(back, b, blk.bb)
			next := c.whole(1+4*(i+1), b*in)
			for j := range next {
				next[j] = ri[j] - back[j]
			}
		}
	}
}

// headKey names a restricted forecast layer: quantile column q of the
// first k knots.
type headKey struct{ q, k int }

// head returns each block's forecast layer restricted to quantile column q
// of the first K knots: weights (width × K) and biases.
func (n *nbeats) head(q, K int) [][2][]float64 {
	if h, ok := n.heads.Load(headKey{q, K}); ok {
		return h.([][2][]float64)
	}
	Q := n.out / n.knots()
	out := make([][2][]float64, len(n.blocks))
	for i, blk := range n.blocks {
		w := make([]float64, n.width*K)
		for r := 0; r < n.width; r++ {
			for k := 0; k < K; k++ {
				w[r*K+k] = blk.wf[r*n.out+k*Q+q]
			}
		}
		b := make([]float64, K)
		for k := range b {
			b[k] = blk.bf[k*Q+q]
		}
		out[i] = [2][]float64{w, b}
	}
	n.heads.Store(headKey{q, K}, out)
	return out
}

func (n *nbeats) forwardMedian(x []float64, b, q, K int, out []float64, c *cache) {
	in, w := n.in, n.width
	heads := n.head(q, K)
	clear(out[:b*K])
	copy(c.whole(1, b*in), x[:b*in])
	for i, blk := range n.blocks {
		ri := c.bufs[1+4*i][:b*in]
		h1 := c.whole(2+4*i, b*w)
		gemm(false, false, b, w, in, 1, ri, blk.w1, 0, h1)
		addBiasRelu(h1, b, blk.b1, true)
		h2 := c.whole(3+4*i, b*w)
		gemm(false, false, b, w, w, 1, h1, blk.w2, 0, h2)
		addBiasRelu(h2, b, blk.b2, true)
		gemm(false, false, b, K, w, 1, h2, heads[i][0], 1, out)
		addBias(out[:b*K], b, heads[i][1])
		if i < len(n.blocks)-1 {
			back := c.whole(4+4*i, b*in)
			gemm(false, false, b, in, w, 1, h2, blk.wb, 0, back)
			addBias(back, b, blk.bb)
			next := c.whole(1+4*(i+1), b*in)
			for j := range next {
				next[j] = ri[j] - back[j]
			}
		}
	}
}

func (n *nbeats) backward(dout []float64, b int, c *cache, grad []float64) {
	in, w, out := n.in, n.width, n.out
	gb := n.gradViews(grad)
	dR := make([]float64, b*in) // gradient with respect to the next block's residual input
	dh2 := make([]float64, b*w)
	dh1 := make([]float64, b*w)
	dback := make([]float64, b*in)
	for i := len(n.blocks) - 1; i >= 0; i-- {
		blk, gbl := n.blocks[i], gb[i]
		r := c.bufs[1+4*i][:b*in]
		h1 := c.bufs[2+4*i][:b*w]
		h2 := c.bufs[3+4*i][:b*w]
		// Forecast head.
		gemm(true, false, w, out, b, 1, h2, dout, 1, gbl.wf)
		colSum(gbl.bf, dout, b)
		gemm(false, true, b, w, out, 1, dout, blk.wf, 0, dh2)
		// Backcast head (the last block's backcast is unused).
		if i < len(n.blocks)-1 {
			for j := range dback {
				dback[j] = -dR[j]
			}
			gemm(true, false, w, in, b, 1, h2, dback, 1, gbl.wb)
			colSum(gbl.bb, dback, b)
			gemm(false, true, b, w, in, 1, dback, blk.wb, 1, dh2)
		}
		for j, v := range h2 {
			if v <= 0 {
				dh2[j] = 0
			}
		}
		gemm(true, false, w, w, b, 1, h1, dh2, 1, gbl.w2)
		colSum(gbl.b2, dh2, b)
		gemm(false, true, b, w, w, 1, dh2, blk.w2, 0, dh1)
		for j, v := range h1 {
			if v <= 0 {
				dh1[j] = 0
			}
		}
		gemm(true, false, in, w, b, 1, r, dh1, 1, gbl.w1)
		colSum(gbl.b1, dh1, b)
		// dR for the previous block: the residual passes through, plus the
		// path through this block's first layer.
		gemm(false, true, b, in, w, 1, dh1, blk.w1, 1, dR)
	}
}

// gradViews lays the gradient vector out like the parameters.
func (n *nbeats) gradViews(grad []float64) []nbBlock {
	out := make([]nbBlock, len(n.blocks))
	off := 0
	take := func(k int) []float64 {
		v := grad[off : off+k : off+k]
		off += k
		return v
	}
	for i := range out {
		s := nbSizes(n.in, n.width, n.out)
		out[i] = nbBlock{take(s[0]), take(s[1]), take(s[2]), take(s[3]), take(s[4]), take(s[5]), take(s[6]), take(s[7])}
	}
	return out
}
