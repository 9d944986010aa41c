package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// errShort is the decoder's sticky error for input that ends early.
var errShort = errors.New("unexpected end of input")

// encoder appends foreshape's compact binary encoding to a byte slice:
// unsigned and zig-zag varints, length-prefixed strings, little-endian IEEE
// floats. The same values always produce the same bytes.
type encoder struct {
	buf []byte
	// scratch is reusable space for whoever drives the encoder.
	scratch []bucket
	// err is the first value that could not be encoded (an act
	// command's JSON of a NaN score): Marshal returns it.
	err error
}

func (e *encoder) u8(v byte)        { e.buf = append(e.buf, v) }
func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) f64(v float64) {
	e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(v))
}
func (e *encoder) f32(v float32) {
	e.buf = binary.LittleEndian.AppendUint32(e.buf, math.Float32bits(v))
}
func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

// decoder reads what encoder wrote. Its error is sticky: after the first
// failure every read returns a zero value, and err says what went wrong.
// It never panics on malformed input and never allocates more than the
// input could describe.
type decoder struct {
	buf []byte
	off int
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) remaining() int { return len(d.buf) - d.off }

func (d *decoder) u8() byte {
	if d.err != nil {
		return 0
	}
	if d.remaining() < 1 {
		d.fail(errShort)
		return 0
	}
	v := d.buf[d.off]
	d.off++
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		d.fail(fmt.Errorf("bad uvarint at offset %d", d.off))
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf[d.off:])
	if n <= 0 {
		d.fail(fmt.Errorf("bad varint at offset %d", d.off))
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) f64() float64 {
	if d.err != nil {
		return 0
	}
	if d.remaining() < 8 {
		d.fail(errShort)
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.buf[d.off:]))
	d.off += 8
	return v
}

func (d *decoder) f32() float32 {
	if d.err != nil {
		return 0
	}
	if d.remaining() < 4 {
		d.fail(errShort)
		return 0
	}
	v := math.Float32frombits(binary.LittleEndian.Uint32(d.buf[d.off:]))
	d.off += 4
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(d.remaining()) {
		d.fail(fmt.Errorf("string of %d bytes at offset %d: %w", n, d.off, errShort))
		return ""
	}
	s := string(d.buf[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

// count reads a length prefix for a list whose elements take at least
// minSize bytes each, rejecting lengths the remaining input cannot hold.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if minSize < 1 {
		minSize = 1
	}
	if n > uint64(d.remaining()/minSize) {
		d.fail(fmt.Errorf("list of %d elements at offset %d: %w", n, d.off, errShort))
		return 0
	}
	return int(n)
}

// key reads a Key written as two strings.
func (d *decoder) key() Key {
	loc := d.str()
	met := d.str()
	return Key{Locality: loc, Metric: met}
}

func (e *encoder) key(k Key) {
	e.str(k.Locality)
	e.str(k.Metric)
}

// done fails when input is left over: every encoding here is exact, and
// trailing bytes mean the producer and consumer disagree on the format.
func (d *decoder) done() error {
	if d.err == nil && d.remaining() != 0 {
		d.fail(fmt.Errorf("%d trailing bytes", d.remaining()))
	}
	return d.err
}
