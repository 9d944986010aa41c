package global

import (
	"bytes"
	"embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"sort"
	"sync"
	"time"
)

// magic starts every weights file; a JSON header (the Config and the
// Provenance) and the parameters as little-endian float32 follow.
const magic = "foreshape-global-model 1\n"

type header struct {
	Config     Config     `json:"config"`
	Provenance Provenance `json:"provenance"`
	Params     int        `json:"params"`
}

// Encode writes the model: magic, the header's length (uint32) and JSON,
// then the parameters as float32.
func (m *Model) Encode(w io.Writer) error {
	p := m.net.params()
	h, err := json.MarshalIndent(header{Config: m.Config, Provenance: m.Provenance, Params: len(p)}, "", "  ")
	if err != nil {
		return fmt.Errorf("global: encode: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteString(magic)
	_ = binary.Write(&buf, binary.LittleEndian, uint32(len(h)))
	buf.Write(h)
	f := make([]byte, 4*len(p))
	for i, v := range p {
		binary.LittleEndian.PutUint32(f[4*i:], math.Float32bits(float32(v)))
	}
	buf.Write(f)
	_, err = w.Write(buf.Bytes())
	return err
}

// Decode reads a model Encode wrote.
func Decode(r io.Reader) (*Model, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("global: decode: %w", err)
	}
	if !bytes.HasPrefix(b, []byte(magic)) {
		return nil, errors.New("global: decode: not a foreshape model")
	}
	b = b[len(magic):]
	if len(b) < 4 {
		return nil, errors.New("global: decode: truncated header")
	}
	n := int(binary.LittleEndian.Uint32(b))
	b = b[4:]
	if n > len(b) {
		return nil, errors.New("global: decode: truncated header")
	}
	var h header
	if err := json.Unmarshal(b[:n], &h); err != nil {
		return nil, fmt.Errorf("global: decode: header: %w", err)
	}
	if err := h.Config.validate(); err != nil {
		return nil, err
	}
	b = b[n:]
	if len(b) != 4*h.Params {
		return nil, fmt.Errorf("global: decode: %d bytes of parameters, want %d", len(b), 4*h.Params)
	}
	p := make([]float64, h.Params)
	for i := range p {
		p[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
	}
	net, err := newNetwork(h.Config, p)
	if err != nil {
		return nil, err
	}
	return &Model{Config: h.Config, Provenance: h.Provenance, net: net}, nil
}

//go:embed weights
var weights embed.FS

var (
	loadOnce sync.Once
	shipped  []*Model
	loadErr  error
)

// Shipped returns the embedded models, sorted by name.
func Shipped() ([]*Model, error) {
	loadOnce.Do(func() {
		err := fs.WalkDir(weights, "weights", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !bytes.HasSuffix([]byte(p), []byte(".fsgm")) {
				return err
			}
			f, err := weights.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			m, err := Decode(f)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			shipped = append(shipped, m)
			return nil
		})
		sort.Slice(shipped, func(i, j int) bool { return shipped[i].Config.Name < shipped[j].Config.Name })
		loadErr = err
	})
	return shipped, loadErr
}

// Default returns the shipped model foreshape uses for series sampled at
// step (the "nbeats" architecture), or false when none was trained at that
// step.
func Default(step time.Duration) (*Model, bool) { return ForArch(step, "nbeats") }

// ForArch returns the shipped model of an architecture for series sampled
// at step, or false.
func ForArch(step time.Duration, arch string) (*Model, bool) {
	ms, err := Shipped()
	if err != nil {
		return nil, false
	}
	for _, m := range ms {
		if m.Config.Arch == arch && m.Config.Step() == step {
			return m, true
		}
	}
	return nil, false
}
