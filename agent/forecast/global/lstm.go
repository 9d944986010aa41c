package global

import (
	"fmt"
	"math"

	"github.com/foreshape/foreshape/agent/forecast/internal/num"
)

// lstm runs one LSTM layer of Width units over the recent window (one
// normalised value per step, oldest first); its last hidden state, with
// the seasonal and static inputs, feeds a fully connected head:
// h = relu([hT, statics]·W1 + b1), out = h·W2 + b2.
//
// Gates are laid out i, f, g, o in blocks of Width.
type lstm struct {
	steps, width, static, out, knots int
	wx, wh, bg                       []float64 // 1×4W, W×4W, 4W
	w1, b1, w2, b2                   []float64 // (W+static)×W, W, W×out, out
	p                                []float64
}

func lstmSizes(w, static, out int) []int {
	return []int{4 * w, w * 4 * w, 4 * w, (w + static) * w, w, w * out, out}
}

func newLSTM(c Config, p []float64) (*lstm, error) {
	w, static, out := c.Width, len(c.Knots)+statics, c.outputs()
	total := 0
	sizes := lstmSizes(w, static, out)
	for _, s := range sizes {
		total += s
	}
	if p == nil {
		p = make([]float64, total)
	}
	if len(p) != total {
		return nil, fmt.Errorf("global: %d parameters for an lstm, want %d", len(p), total)
	}
	n := &lstm{steps: c.Context, width: w, static: static, out: out, knots: len(c.Knots), p: p}
	views := split(p, sizes)
	n.wx, n.wh, n.bg, n.w1, n.b1, n.w2, n.b2 = views[0], views[1], views[2], views[3], views[4], views[5], views[6]
	return n, nil
}

// split cuts p into consecutive views of the given sizes.
func split(p []float64, sizes []int) [][]float64 {
	out := make([][]float64, len(sizes))
	off := 0
	for i, s := range sizes {
		out[i] = p[off : off+s : off+s]
		off += s
	}
	return out
}

func (n *lstm) params() []float64 { return n.p }

func sigm(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// Cache layout: 0 gates (T×B×4W, after their nonlinearities), 1 cell
// states (T×B×W), 2 hidden states (T×B×W), 3 head input (B×(W+static)),
// 4 head hidden (B×W), 5 the input rows.
func (n *lstm) forward(x []float64, b int, out []float64, c *cache) {
	T, W, S := n.steps, n.width, n.static
	in := T + S
	copy(c.buf(5, b*in), x[:b*in])
	gates := c.buf(0, T*b*4*W)
	cells := c.buf(1, T*b*W)
	hid := c.buf(2, T*b*W)
	for t := 0; t < T; t++ {
		g := gates[t*b*4*W : (t+1)*b*4*W]
		// g = x_t·wx + h_{t-1}·wh + bg
		for r := 0; r < b; r++ {
			xv := x[r*in+t]
			row := g[r*4*W : (r+1)*4*W]
			for j := range row {
				row[j] = xv*n.wx[j] + n.bg[j]
			}
		}
		if t > 0 {
			gemm(false, false, b, 4*W, W, 1, hid[(t-1)*b*W:t*b*W], n.wh, 1, g)
		}
		cs, hs := cells[t*b*W:(t+1)*b*W], hid[t*b*W:(t+1)*b*W]
		for r := 0; r < b; r++ {
			row := g[r*4*W : (r+1)*4*W]
			for j := 0; j < W; j++ {
				i, f, gg, o := sigm(row[j]), sigm(row[W+j]), num.Tanh(row[2*W+j]), sigm(row[3*W+j])
				row[j], row[W+j], row[2*W+j], row[3*W+j] = i, f, gg, o
				prev := 0.0
				if t > 0 {
					prev = cells[(t-1)*b*W+r*W+j]
				}
				cv := float64(f*prev) + float64(i*gg)
				cs[r*W+j] = cv
				hs[r*W+j] = o * num.Tanh(cv)
			}
		}
	}
	hin := c.buf(3, b*(W+S))
	last := hid[(T-1)*b*W : T*b*W]
	for r := 0; r < b; r++ {
		copy(hin[r*(W+S):r*(W+S)+W], last[r*W:(r+1)*W])
		copy(hin[r*(W+S)+W:(r+1)*(W+S)], x[r*in+T:(r+1)*in])
	}
	h := c.buf(4, b*W)
	gemm(false, false, b, W, W+S, 1, hin, n.w1, 0, h)
	addBias(h, b, n.b1)
	relu(h)
	gemm(false, false, b, n.out, W, 1, h, n.w2, 0, out[:b*n.out])
	addBias(out[:b*n.out], b, n.b2)
}

// forwardMedian runs forward and keeps quantile column q of the first K
// knots: the LSTM's head is small next to its recurrence, so there is
// nothing to save by computing less of it.
func (n *lstm) forwardMedian(x []float64, b, q, K int, out []float64, c *cache) {
	full := c.buf(6, b*n.out)
	n.forward(x, b, full, c)
	Q := n.out / n.knots
	for r := 0; r < b; r++ {
		for k := 0; k < K; k++ {
			out[r*K+k] = full[r*n.out+k*Q+q]
		}
	}
}

func (n *lstm) backward(dout []float64, b int, c *cache, grad []float64) {
	T, W, S := n.steps, n.width, n.static
	g := split(grad, lstmSizes(W, S, n.out))
	gwx, gwh, gbg, gw1, gb1, gw2, gb2 := g[0], g[1], g[2], g[3], g[4], g[5], g[6]
	gates, cells, hid := c.bufs[0], c.bufs[1], c.bufs[2]
	hin, h := c.bufs[3][:b*(W+S)], c.bufs[4][:b*W]
	in := T + S
	// Head.
	gemm(true, false, W, n.out, b, 1, h, dout, 1, gw2)
	colSum(gb2, dout, b)
	dh := make([]float64, b*W)
	gemm(false, true, b, W, n.out, 1, dout, n.w2, 0, dh)
	for j, v := range h {
		if v <= 0 {
			dh[j] = 0
		}
	}
	gemm(true, false, W+S, W, b, 1, hin, dh, 1, gw1)
	colSum(gb1, dh, b)
	dhin := make([]float64, b*(W+S))
	gemm(false, true, b, W+S, W, 1, dh, n.w1, 0, dhin)
	// Through time.
	dH := make([]float64, b*W) // gradient with respect to h_t
	dC := make([]float64, b*W) // gradient with respect to c_t
	for r := 0; r < b; r++ {
		copy(dH[r*W:(r+1)*W], dhin[r*(W+S):r*(W+S)+W])
	}
	xs := c.bufs[5][:b*in]
	dG := make([]float64, b*4*W)
	for t := T - 1; t >= 0; t-- {
		gt := gates[t*b*4*W : (t+1)*b*4*W]
		ct := cells[t*b*W : (t+1)*b*W]
		for r := 0; r < b; r++ {
			row := gt[r*4*W : (r+1)*4*W]
			drow := dG[r*4*W : (r+1)*4*W]
			for j := 0; j < W; j++ {
				i, f, gg, o := row[j], row[W+j], row[2*W+j], row[3*W+j]
				tc := num.Tanh(ct[r*W+j])
				dh := dH[r*W+j]
				dc := dC[r*W+j] + dh*o*(1-tc*tc)
				prev := 0.0
				if t > 0 {
					prev = cells[(t-1)*b*W+r*W+j]
				}
				drow[j] = dc * gg * i * (1 - i)
				drow[W+j] = dc * prev * f * (1 - f)
				drow[2*W+j] = dc * i * (1 - gg*gg)
				drow[3*W+j] = dh * tc * o * (1 - o)
				dC[r*W+j] = dc * f
			}
		}
		// Parameter gradients of this step's gates.
		for r := 0; r < b; r++ {
			xv := xs[r*in+t]
			drow := dG[r*4*W : (r+1)*4*W]
			for j, d := range drow {
				gwx[j] += float64(xv * d)
				gbg[j] += d
			}
		}
		if t > 0 {
			hprev := hid[(t-1)*b*W : t*b*W]
			gemm(true, false, W, 4*W, b, 1, hprev, dG, 1, gwh)
			gemm(false, true, b, W, 4*W, 1, dG, n.wh, 0, dH)
		}
	}
}
