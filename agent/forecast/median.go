package forecast

import (
	"fmt"

	"github.com/foreshape/foreshape/agent/forecast/internal/num"
)

// medianCore forecasts the median of the last w observations at every
// step: a robust local level. On sparse, bursty series (disk reads that are
// mostly zero, request counts with spikes) it is the point forecast that
// minimises absolute error where smoothing models chase the bursts.
type medianCore struct {
	w   int
	buf []float64 // ring of the last w finite observations
	n   int
	tmp []float64
}

func newMedianCore(w int) *medianCore {
	if w < 1 {
		w = 1
	}
	return &medianCore{w: w, buf: make([]float64, 0, w)}
}

func (c *medianCore) fit([]float64) error { return nil }
func (c *medianCore) reset()              { c.buf, c.n = c.buf[:0], 0 }
func (c *medianCore) observe(v float64) {
	if !num.Finite(v) {
		return
	}
	if len(c.buf) < c.w {
		c.buf = append(c.buf, v)
	} else {
		c.buf[c.n%c.w] = v
	}
	c.n++
}
func (c *medianCore) forecast(out []float64) {
	c.tmp = append(c.tmp[:0], c.buf...)
	v := 0.0
	if len(c.tmp) > 0 {
		// The sorted window's median, to the bit, by selection.
		v = num.QuantileSelect(c.tmp, 0.5)
	}
	for i := range out {
		out[i] = v
	}
}
func (c *medianCore) label() string { return fmt.Sprintf("median(%d)", c.w) }
func (c *medianCore) bytes() int    { return 8*2*c.w + 48 }
