package preflight_test

import (
	"cmp"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/preflight"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/dirtree"
)

// TestCheckPeersFile: a server's data_dir/peers.json that the server would
// refuse at its start is refused by Check (what `config validate` and the
// agent run first), pointing at data_dir, with cluster.ReadPeersFile's
// message, which names the file, the line and column: one not valid JSON,
// a server without an id or an address, an id or an address twice, no
// voter, not naming this server or naming it at another address than
// advertise_addr (else bind_addr) and raft_port, a file that cannot be
// read, and a file in a data_dir without a node-id (a server that never
// started there has no Raft state). A file the server would apply is
// accepted, and dev mode, whose state is in memory, reads none. Check
// leaves the data_dir as it was, the file included.
func TestCheckPeersFile(t *testing.T) {
	const self, other = "2f1b6c3e-7d4a-4e8b-9c0d-1a2b3c4d5e6f", "0b6b3a52-6c4f-4f11-9f4c-3f1d2a9e7b10"
	for _, tc := range []struct {
		name   string
		file   string // peers.json, SELF and ADDR replaced; "" for none
		noID   bool   // no node-id in data_dir
		apply  func(c *config.Config)
		served string // where the server serves Raft: ADDR when ""
		want   string // "" when accepted
		wantAt string // the file's line and column the message names
	}{
		{name: "no file"},
		{name: "a file the server applies", file: `[{"id": "SELF", "address": "ADDR"}, {"id": "OTHER", "address": "10.0.0.12:7576", "non_voter": true}]`},
		{name: "named at advertise_addr", file: `[{"id": "SELF", "address": "10.0.0.5:7576"}]`,
			apply: func(c *config.Config) { c.BindAddr, c.AdvertiseAddr = "0.0.0.0", "10.0.0.5" }},
		{name: "dev mode reads none", file: "{", apply: func(c *config.Config) { c.DevMode = true }},
		{name: "not valid JSON", file: "[\n  {\"id\": \"SELF\", \"address\": \"ADDR\",}\n]", want: "not valid JSON: invalid character '}'", wantAt: ":2,"},
		{name: "empty", file: "\n", want: "the file is empty", wantAt: ":1,1"},
		{name: "no id", file: `[{"address": "ADDR"}]`, want: `server 1 has no "id"`, wantAt: ":1,2"},
		{name: "no address", file: `[{"id": "SELF"}]`, want: `server 1 (SELF) has no "address"`, wantAt: ":1,2"},
		{name: "an id twice", file: "[{\"id\": \"SELF\", \"address\": \"ADDR\"},\n {\"id\": \"SELF\", \"address\": \"10.0.0.12:7576\"}]",
			want: "server 2 has the id SELF of server 1", wantAt: ":2,9"},
		{name: "an address twice", file: "[{\"id\": \"SELF\", \"address\": \"ADDR\"},\n {\"id\": \"OTHER\", \"address\": \"ADDR\"}]",
			want: "server 2 has the address ADDR of server 1", wantAt: ":2,"},
		{name: "an address without a port", file: `[{"id": "SELF", "address": "10.0.0.12"}]`, want: `is not HOST:PORT`, wantAt: ":1,"},
		{name: "no voter", file: `[{"id": "SELF", "address": "ADDR", "non_voter": true}]`, want: "every server is a non_voter", wantAt: ":1,1"},
		{name: "an unknown field", file: `[{"id": "SELF", "address": "ADDR", "adress": "x"}]`, want: `"adress" is not a field of a server`, wantAt: ":1,"},
		{name: "not naming this server", file: `[{"id": "OTHER", "address": "ADDR"}]`,
			want: "the file does not name this server (its id SELF, in its data_dir/node-id)", wantAt: ":1,1"},
		{name: "naming it at another address", file: `[{"id": "SELF", "address": "127.0.0.1:7577"}]`,
			want: "the file names this server (SELF) at 127.0.0.1:7577, but it serves Raft at ADDR", wantAt: ":1,"},
		{name: "naming it at bind_addr, advertise_addr set", file: `[{"id": "SELF", "address": "ADDR"}]`,
			apply: func(c *config.Config) { c.AdvertiseAddr = "10.0.0.5" }, served: "10.0.0.5:7576",
			want: "the file names this server (SELF) at ADDR, but it serves Raft at 10.0.0.5:7576"},
		{name: "no node-id", file: `[{"id": "SELF", "address": "ADDR"}]`, noID: true,
			want: "this server has no Raft state to recover (no node-id in its data_dir"},
		{name: "no node-id, the file not valid", file: `[{"id": "SELF"}]`, noID: true, want: `server 1 (SELF) has no "address"`},
		{name: "cannot be read", file: "DIR", want: "peers.json: cannot read it:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			cfg := f.config()
			if tc.apply != nil {
				tc.apply(cfg)
			}
			addr := "127.0.0.1:7576" // bind_addr's default, raft_port's
			r := strings.NewReplacer("SELF", self, "OTHER", other, "ADDR", addr)
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				t.Fatal(err)
			}
			if !tc.noID {
				write(t, filepath.Join(cfg.DataDir, "node-id"), self+"\n")
			}
			path := filepath.Join(cfg.DataDir, cluster.PeersFile)
			switch tc.file {
			case "":
			case "DIR":
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
			default:
				write(t, path, r.Replace(tc.file))
			}
			before := dirtree.Of(t, cfg.DataDir)
			_, diags := preflight.Check(cfg, preflight.Options{})
			if got := dirtree.Of(t, cfg.DataDir); got != before {
				t.Errorf("data_dir after Check:\n%s\nbefore:\n%s", got, before)
			}
			err := preflight.Err(diags)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var peers []*hcl.Diagnostic
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					peers = append(peers, d)
				}
			}
			if len(peers) != 1 || peers[0].Summary != "Invalid peers file in data_dir" {
				t.Fatalf("errors %v; want one about the peers file", err)
			}
			d := peers[0]
			if want := r.Replace(tc.want); !strings.Contains(d.Detail, want) || !strings.HasPrefix(d.Detail, path+r.Replace(tc.wantAt)) {
				t.Errorf("detail %q; want it to begin %q and say %q", d.Detail, path+r.Replace(tc.wantAt), want)
			}
			if !strings.HasSuffix(d.Detail, "nothing was changed: correct the file (or move it out of data_dir to start without recovering) and start this server again.") {
				t.Errorf("detail %q; want it to say nothing was changed and what to do", d.Detail)
			}
			// The server's own check gives the same message.
			id := self
			if tc.noID {
				id = ""
			}
			_, _, rerr := cluster.ReadPeersFile(cfg.DataDir, id, cmp.Or(tc.served, addr))
			var pe *cluster.PeersFileError
			if !errors.As(rerr, &pe) || pe.Message()+"." != d.Detail {
				t.Errorf("cluster.ReadPeersFile: %v; want the detail %q", rerr, d.Detail)
			}
		})
	}
}
