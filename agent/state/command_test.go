package state

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCommandRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cmd  Command
	}{
		{"append", AppendSamples{Step: time.Minute, Samples: []Sample{
			{cpu, at(time.Minute), 41.5},
			{mem, at(time.Minute), 1 << 33},
			{cpu, at(0), -0.25}, // earlier than the previous: a negative delta
			{iops, time.Unix(-90, 0).UTC(), 7},
		}}},
		{"append empty", AppendSamples{Step: 10 * time.Second, Samples: []Sample{}}},
		{"mark stale", MarkStale{Keys: []Key{cpu, mem}, Since: at(3 * time.Minute), Reason: "client stats: connection refused"}},
		{"drop", DropSeries{Keys: []Key{iops}}},
		{"drop none", DropSeries{Keys: []Key{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Encode(tt.cmd)
			if b[0] != envelopeVersion || CommandType(b[1]) != tt.cmd.Type() {
				t.Fatalf("envelope %v; want version %d type %d", b[:2], envelopeVersion, tt.cmd.Type())
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.cmd, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			if b2 := Encode(got); string(b2) != string(b) {
				t.Error("re-encoding the decoded command gives different bytes")
			}
			// Every strict prefix is malformed, and none panics.
			for i := 2; i < len(b); i++ {
				if _, err := Decode(b[:i]); !errors.Is(err, ErrMalformedPayload) {
					t.Fatalf("prefix of %d/%d bytes: %v; want ErrMalformedPayload", i, len(b), err)
				}
			}
			if _, err := Decode(append(b, 0)); !errors.Is(err, ErrMalformedPayload) {
				t.Errorf("trailing byte: %v; want ErrMalformedPayload", err)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		err  error
	}{
		{"empty", nil, ErrBadEnvelope},
		{"one byte", []byte{1}, ErrBadEnvelope},
		{"future version", []byte{2, byte(TypeDropSeries), 0}, ErrBadEnvelope},
		{"unknown type", []byte{1, 200, 0}, ErrUnknownCommand},
		{"key index out of range", []byte{1, byte(TypeAppendSamples), 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrMalformedPayload},
		{"huge list length", []byte{1, byte(TypeDropSeries), 0xff, 0xff, 0xff, 0xff, 0x0f}, ErrMalformedPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.in); !errors.Is(err, tt.err) {
				t.Errorf("Decode = %v; want %v", err, tt.err)
			}
		})
	}
}

func TestAppendEncodingSize(t *testing.T) {
	c := AppendSamples{Step: time.Minute}
	for i := range 1000 {
		c.Samples = append(c.Samples, Sample{Key{"dc1/node-" + string(rune('A'+i%50)), "cpu"}, at(0), float64(i)})
	}
	b := Encode(c)
	// 1,000 samples at one time: key index (1 byte), delta (1 byte), value
	// (8 bytes), plus a table of 50 keys of about 15 bytes.
	if len(b) > 1000*10+50*16+16 {
		t.Errorf("1,000 samples over 50 keys encode to %d bytes; want about 10.8 kB", len(b))
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(AppendSamples{Step: time.Minute, Samples: []Sample{{cpu, at(0), 1}, {mem, at(time.Minute), 2}}}))
	f.Add(Encode(MarkStale{Keys: []Key{cpu}, Since: at(0), Reason: "x"}))
	f.Add(Encode(DropSeries{Keys: []Key{cpu}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must apply without panicking.
		fsm := newFSM(t, smallTiers)
		fsm.Apply(logOf(1, Encode(c))[0])
	})
}
