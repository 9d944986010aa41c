package cluster

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Outage recovery. When a majority of the voters is lost for good, the
// servers left can never elect a leader: raft counts votes against a
// configuration that names the lost servers. An operator then writes a
// peers file (PeersFile) into the data_dir of each server left, naming the
// servers of the new configuration, and starts them. Before raft starts,
// such a server checks the file, rewrites its Raft state with
// raft.RecoverCluster (a snapshot of every entry it holds, now counted as
// committed, carrying the file's configuration; the log it replaces is
// deleted), takes the recovered cluster's ID (recoveredClusterID), logs at
// WARN what it did, and renames the file so that a restart does not apply
// it again. A file it refuses stops the start and changes nothing (one
// in a data_dir with no Raft state is refused before the Raft store is
// opened, which would create raft.db and snapshots/: refuseWithoutState):
// it is an operator's explicit act, as a damaged raft.db is. The checks are
// ReadPeersFile's, which reads only: the agent's preflight runs it before
// it makes a node ID or opens the Raft store, and so does `foreshape
// config validate`, so a file refused at the start is refused there
// first, with the same message.
//
// The recovered cluster has a new cluster ID, made from the file's
// configuration, so that every server given the same file takes the same
// one: a server of the old configuration that comes back with its old
// state (its ID the old cluster's) is refused at the Raft port and when it
// asks to join, and told to move its data_dir aside and join as a new
// server. With the old ID, the lost servers coming back together formed a
// quorum of the old configuration, elected a leader of their own, and once
// its term passed the recovered leader's, the recovered server stepped
// down and followed it (TestReturningOldServersDoNotSplitTheRecoveredCluster
// without the new ID).

// PeersFile is the name of the recovery file in a server's data_dir.
const PeersFile = "peers.json"

// PeersFileError is New's error for a peers file it refuses: where in the
// file, and why. Nothing was changed, but for what Created names.
type PeersFileError struct {
	// Path is the file; Line and Column (1-based) where the fault is, or
	// zero when it is the file as a whole.
	Path         string
	Line, Column int
	Reason       string
	// Created names what this start made in the data_dir before it
	// refused the file (raft.db, snapshots/: empty), which only opening
	// the Raft store could tell was needed; none when it refused first.
	Created []string
}

func (e *PeersFileError) Error() string { return "cluster: " + e.Message() }

// Message is the error without the package's prefix, for a message of
// its own: preflight's diagnostic of the same file, which `foreshape
// config validate` and the agent print.
func (e *PeersFileError) Message() string {
	at := e.Path
	if e.Line > 0 {
		at = fmt.Sprintf("%s:%d,%d", e.Path, e.Line, e.Column)
	}
	changed := "nothing was changed"
	if len(e.Created) > 0 {
		changed = fmt.Sprintf("nothing was changed but for %s, which this start created empty in the data_dir", strings.Join(e.Created, " and "))
	}
	return fmt.Sprintf("%s: %s; %s: correct the file (or move it out of data_dir to start without recovering) and start this server again", at, e.Reason, changed)
}

// peer is one server the peers file names, with where it is in the file.
type peer struct {
	ID       string
	Address  string
	NonVoter bool
	// at is the offset of the entry's '{'; field the offsets of its values.
	at    int
	field map[string]int
}

// peersList is a parsed peers file: its servers and the offset of its '['.
type peersList struct {
	peers []peer
	at    int
}

// posError is a fault at an offset of the file, made a PeersFileError by
// readPeers.
type posError struct {
	off    int
	reason string
}

func (e *posError) Error() string { return e.reason }

func faultAt(off int, format string, args ...any) error {
	return &posError{off: off, reason: fmt.Sprintf(format, args...)}
}

// position returns the 1-based line and column of off in data.
func position(data []byte, off int) (line, col int) {
	off = min(max(off, 0), len(data))
	line = 1 + bytes.Count(data[:off], []byte("\n"))
	return line, off - (bytes.LastIndexByte(data[:off], '\n') + 1) + 1
}

// skip returns the offset of the next value or key at or after off: past
// blanks and one separator the decoder has not consumed yet.
func skip(data []byte, off int) int {
	for off < len(data) && strings.IndexByte(" \t\r\n,", data[off]) >= 0 {
		off++
	}
	return off
}

// kind names the JSON value raw, for errors.
func kind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// badChar is the character a syntax error names.
var badChar = regexp.MustCompile(`^invalid character '(.)'`)

// syntaxFault turns the decoder's error into a fault where it stopped.
func syntaxFault(data []byte, dec *json.Decoder, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		// The offset is at the character that broke the syntax (the
		// decoder's tokens) or just past it (its values).
		off := int(se.Offset)
		if m := badChar.FindStringSubmatch(se.Error()); m != nil && off > 0 && off <= len(data) && (off == len(data) || string(data[off]) != m[1]) && string(data[off-1]) == m[1] {
			off--
		}
		return faultAt(off, "not valid JSON: %v", se)
	case errors.Is(err, io.EOF) && len(bytes.TrimSpace(data)) == 0:
		return faultAt(0, "the file is empty: it takes a list of the servers of the recovered configuration, "+
			`[{"id": "…", "address": "HOST:PORT", "non_voter": false}, …]`)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return faultAt(len(data), "not valid JSON: the file ends before the list does")
	}
	return faultAt(int(dec.InputOffset()), "not valid JSON: %v", err)
}

// parsePeers reads a peers file's JSON: a list of objects with the fields
// id, address and non_voter, and nothing else.
func parsePeers(data []byte) (peersList, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var out peersList
	out.at = skip(data, 0)
	// The syntax first, so that a fault later in the file is not taken
	// for a value of the wrong kind.
	var whole any
	if err := json.Unmarshal(data, &whole); err != nil && len(bytes.TrimSpace(data)) > 0 {
		var se *json.SyntaxError
		// Cut short, not followed by more text, which the decoder's
		// offset also puts at the end when it is the file's last
		// character ("invalid character ']' after top-level value").
		if errors.As(err, &se) && se.Offset >= int64(len(data)) && !badChar.MatchString(se.Error()) {
			return out, faultAt(len(data), "not valid JSON: the file ends before the list does")
		}
		return out, syntaxFault(data, dec, err)
	}
	tok, err := dec.Token()
	if err != nil {
		return out, syntaxFault(data, dec, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return out, faultAt(out.at, "the file holds %s, not a list of servers: "+
			`[{"id": "…", "address": "HOST:PORT", "non_voter": false}, …]`, kind(data[out.at:]))
	}
	for dec.More() {
		p := peer{at: skip(data, int(dec.InputOffset())), field: map[string]int{}}
		n := len(out.peers) + 1
		var raw json.RawMessage
		if data[p.at] != '{' {
			if err := dec.Decode(&raw); err != nil {
				return out, syntaxFault(data, dec, err)
			}
			return out, faultAt(p.at, "server %d is %s, not an object with the fields id, address and non_voter", n, kind(raw))
		}
		if _, err := dec.Token(); err != nil {
			return out, syntaxFault(data, dec, err)
		}
		for dec.More() {
			koff := skip(data, int(dec.InputOffset()))
			kt, err := dec.Token()
			if err != nil {
				return out, syntaxFault(data, dec, err)
			}
			key, _ := kt.(string)
			raw = nil
			if err := dec.Decode(&raw); err != nil {
				return out, syntaxFault(data, dec, err)
			}
			voff := int(dec.InputOffset()) - len(raw)
			if _, dup := p.field[key]; dup {
				return out, faultAt(koff, "server %d gives %q twice", n, key)
			}
			p.field[key] = voff
			switch key {
			case "id", "address":
				var s string
				if kind(raw) != "a string" || json.Unmarshal(raw, &s) != nil {
					return out, faultAt(voff, "server %d's %q is %s, not a string", n, key, kind(raw))
				}
				if key == "id" {
					p.ID = s
				} else {
					p.Address = s
				}
			case "non_voter":
				if kind(raw) != "a boolean" || json.Unmarshal(raw, &p.NonVoter) != nil {
					return out, faultAt(voff, "server %d's \"non_voter\" is %s, not true or false", n, kind(raw))
				}
			default:
				return out, faultAt(koff, "%q is not a field of a server: each takes \"id\", \"address\" and \"non_voter\" (optional, false by default)", key)
			}
		}
		if _, err := dec.Token(); err != nil {
			return out, syntaxFault(data, dec, err)
		}
		out.peers = append(out.peers, p)
	}
	if _, err := dec.Token(); err != nil {
		return out, syntaxFault(data, dec, err)
	}
	return out, nil
}

// checkAddress says what is wrong with a Raft address ("" when nothing).
func checkAddress(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Sprintf("%q is not HOST:PORT (%v)", a, strings.TrimPrefix(err.Error(), "address "+a+": "))
	}
	if host == "" || strings.ContainsAny(host, " \t") {
		return fmt.Sprintf("%q names no host: give the address the other servers dial, such as \"10.0.0.11:7576\"", a)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Sprintf("%q: the port %q is not a number from 1 to 65535", a, port)
	}
	return ""
}

// checkPeers checks a parsed peers file for the server self at address
// selfAddr and returns the configuration it names. self "" is a server
// with no node ID yet, which the file cannot name (ReadPeersFile refuses
// it after these checks); selfAddr "" is not checked.
func checkPeers(list peersList, self, selfAddr string) (raft.Configuration, error) {
	var conf raft.Configuration
	if len(list.peers) == 0 {
		return conf, faultAt(list.at, "the list names no server: name this server and every other server of the recovered configuration")
	}
	ids, addrs := map[string]int{}, map[string]int{}
	voters := 0
	var me *peer
	for i := range list.peers {
		p := &list.peers[i]
		n := i + 1
		off, ok := p.field["id"]
		switch {
		case !ok:
			return conf, faultAt(p.at, "server %d has no \"id\": give each server's Raft ID (kept in its data_dir/node-id)", n)
		case p.ID == "" || strings.TrimSpace(p.ID) != p.ID:
			return conf, faultAt(off, "server %d's \"id\" %q is not a server ID: give each server's Raft ID (kept in its data_dir/node-id)", n, p.ID)
		}
		if j, dup := ids[p.ID]; dup {
			return conf, faultAt(off, "server %d has the id %s of server %d: name each server once", n, p.ID, j)
		}
		ids[p.ID] = n
		off, ok = p.field["address"]
		if !ok {
			return conf, faultAt(p.at, "server %d (%s) has no \"address\": give the Raft address the other servers dial it at, HOST:PORT", n, p.ID)
		}
		if why := checkAddress(p.Address); why != "" {
			return conf, faultAt(off, "server %d's \"address\" %s", n, why)
		}
		if j, dup := addrs[p.Address]; dup {
			return conf, faultAt(off, "server %d has the address %s of server %d: each server has its own", n, p.Address, j)
		}
		addrs[p.Address] = n
		suf := raft.Voter
		if p.NonVoter {
			suf = raft.Nonvoter
		} else {
			voters++
		}
		if p.ID == self {
			me = p
		}
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: suf, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)})
	}
	switch {
	case me == nil && self != "":
		return conf, faultAt(list.at, "the file does not name this server (its id %s, in its data_dir/node-id): "+
			"a server recovers only into a configuration that has it; is this file meant for another server?", self)
	case voters == 0:
		return conf, faultAt(list.at, "every server is a non_voter: the recovered configuration needs at least one voter")
	case me != nil && selfAddr != "" && me.Address != selfAddr:
		return conf, faultAt(me.field["address"], "the file names this server (%s) at %s, but it serves Raft at %s: "+
			"give the address the other servers dial it at (its advertise_addr and raft_port)", self, me.Address, selfAddr)
	}
	return conf, nil
}

// readPeers reads and checks the peers file at path for the server self
// at selfAddr.
func readPeers(path string, data []byte, self, selfAddr string) (raft.Configuration, error) {
	list, err := parsePeers(data)
	var conf raft.Configuration
	if err == nil {
		conf, err = checkPeers(list, self, selfAddr)
	}
	var pe *posError
	if errors.As(err, &pe) {
		line, col := position(data, pe.off)
		return conf, &PeersFileError{Path: path, Line: line, Column: col, Reason: pe.reason}
	}
	return conf, err
}

// noStateFix is what to do with a peers file in the data_dir of a server
// that has no Raft state.
const noStateFix = "a peers file goes into the data_dir of each server left with the cluster's state; " +
	"a new server joins through server.retry_join, or is named in the survivors' files"

// ReadPeersFile reads and checks dataDir's peers file, when there is one,
// as the server self, serving Raft at selfAddr, checks it before raft
// starts, and returns the configuration it names; found is false when
// there is no file. It only reads: New applies the file after it, and
// `foreshape config validate` runs it (through preflight) on a data_dir
// that a server may be about to start with, so that a file New would
// refuse is refused there, with the same *PeersFileError.
//
// self "" is a server with no node ID in dataDir yet: it never started
// with this data_dir, so it has no Raft state to recover, and a file in
// it is refused once its own checks pass (New would make the node ID, and
// then refuse the file for not naming it). selfAddr "" is not checked.
// What only the data_dir's Raft state can tell (a server with a node ID
// but no Raft state) New finds before it opens the Raft store when the
// data_dir holds neither raft.db nor a snapshot (refuseWithoutState),
// else once it opened it.
func ReadPeersFile(dataDir, self, selfAddr string) (conf raft.Configuration, found bool, err error) {
	path := filepath.Join(dataDir, PeersFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return conf, false, nil
	case err != nil:
		return conf, true, &PeersFileError{Path: path, Reason: fmt.Sprintf("cannot read it: %v", err)}
	}
	if conf, err = readPeers(path, data, self, selfAddr); err != nil {
		return conf, true, err
	}
	if self == "" {
		return conf, true, &PeersFileError{Path: path, Reason: "this server has no Raft state to recover (no node-id in its data_dir: it has never started with it): " + noStateFix}
	}
	return conf, true, nil
}

// noStateReason is why a peers file is refused in the data_dir of a server
// with a node ID and no Raft state.
const noStateReason = "this server has no Raft state to recover (no log, no snapshot in its data_dir): " + noStateFix

// refuseWithoutState refuses dataDir's peers file before New opens the
// Raft store there, when the data_dir plainly holds no Raft state: no
// raft.db and no snapshot. Opening the store creates both raft.db and
// snapshots/, and the refusal (which recoverFromPeersFile would make
// once the store tells) says nothing was changed: this one is made
// before anything is. The file is checked first as ReadPeersFile checks
// it, but for this server's address, which the transport knows only once
// it listens (recoverFromPeersFile checks it when there is state). A
// data_dir that may hold state (raft.db there, or a snapshot directory)
// is left to the store to tell.
func refuseWithoutState(dataDir, self string) error {
	_, found, err := ReadPeersFile(dataDir, self, "")
	if err != nil || !found {
		return err
	}
	if mayHoldRaftState(dataDir) {
		return nil
	}
	return &PeersFileError{Path: filepath.Join(dataDir, PeersFile), Reason: noStateReason}
}

// mayHoldRaftState says whether dataDir may hold Raft state: raft.db is
// there, or snapshots/ holds anything but what a killed process left
// half-written (NAME.tmp, which raft's store skips), or either cannot be
// told.
func mayHoldRaftState(dataDir string) bool {
	if _, err := os.Lstat(filepath.Join(dataDir, "raft.db")); !errors.Is(err, fs.ErrNotExist) {
		return true
	}
	entries, err := os.ReadDir(filepath.Join(dataDir, "snapshots"))
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".tmp") {
			return true
		}
	}
	return false
}

// recoveredClusterID is the cluster ID of a configuration recovered from a
// peers file: the same for every server given the same servers (in any
// order), and unlike any random ID (its version nibble is 8).
func recoveredClusterID(conf raft.Configuration) string {
	servers := slices.Clone(conf.Servers)
	slices.SortFunc(servers, func(a, b raft.Server) int { return strings.Compare(string(a.ID), string(b.ID)) })
	h := sha256.New()
	io.WriteString(h, "foreshape recovered configuration\n")
	for _, s := range servers {
		fmt.Fprintf(h, "%s %s %s\n", s.ID, s.Address, s.Suffrage)
	}
	r := h.Sum(nil)[:16]
	r[6] = r[6]&0x0f | 0x80
	r[8] = r[8]&0x3f | 0x80
	x := hex.EncodeToString(r)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

// describe lists a configuration's servers for the log.
func describe(conf raft.Configuration) string {
	var out []string
	for _, s := range conf.Servers {
		what := "voter"
		if s.Suffrage != raft.Voter {
			what = "non-voter"
		}
		out = append(out, fmt.Sprintf("%s at %s (%s)", s.ID, s.Address, what))
	}
	return strings.Join(out, ", ")
}

// recoverFromPeersFile applies data_dir/peers.json, when there is one,
// before raft starts: see the comment at the top of this file. fsm is the
// state machine raft is given; RecoverCluster restores and applies into
// it, and raft restores it again from the recovered snapshot when it
// starts (a state machine's Restore replaces all its state).
func (n *Node) recoverFromPeersFile(fsm raft.FSM, rc *raft.Config, now time.Time) error {
	if n.cfg.InMemory || n.cfg.DataDir == "" {
		return nil
	}
	conf, found, err := ReadPeersFile(n.cfg.DataDir, n.cfg.NodeID, string(n.trans.LocalAddr()))
	if err != nil || !found {
		return err
	}
	path := filepath.Join(n.cfg.DataDir, PeersFile)
	has, err := raft.HasExistingState(n.logs, n.stable, n.snaps)
	if err != nil {
		return fmt.Errorf("cluster: recover from %s: %w", path, err)
	}
	if !has {
		return &PeersFileError{Path: path, Reason: noStateReason, Created: n.created}
	}
	last, term := n.lastEntry()
	oldID := n.ClusterID()
	if err := raft.RecoverCluster(rc, n.wrapFSM(fsm), n.logs, n.stable, n.snaps, n.trans, conf); err != nil {
		if herr := n.halted(); herr != nil {
			return fmt.Errorf("cluster: recover from %s: %w: %w; start this server with the release the other servers ran, then recover", path, err, herr)
		}
		return fmt.Errorf("cluster: recover from %s: %w (the file is left where it is; the log says more)", path, err)
	}
	id := recoveredClusterID(conf)
	// What the cluster was recovered from, kept before the new ID so that
	// a stop between the two applies the file again with the old ID
	// known (recovered.go).
	if oldID != "" && oldID != id {
		var servers []string
		for _, s := range conf.Servers {
			servers = append(servers, fmt.Sprintf("%s at %s", s.ID, s.Address))
		}
		if err := n.addRecoveries([]Recovery{{Old: oldID, New: id, At: now.UTC(), Servers: servers}}, "recovered from "+path); err != nil {
			return fmt.Errorf("cluster: recover from %s: %w (the file is left where it is: starting again applies it again)", path, err)
		}
	}
	if err := n.stable.Set(stableKeyClusterID, []byte(id)); err != nil {
		return fmt.Errorf("cluster: recover from %s: keep the recovered cluster's id: %w (the file is left where it is: starting again applies it again)", path, err)
	}
	n.clusterID.Store(&id)
	applied := path + ".applied-" + now.UTC().Format("20060102T150405Z")
	if err := os.Rename(path, applied); err != nil {
		return fmt.Errorf("cluster: recovered the Raft configuration from %s, but cannot rename it: %w; rename or remove it before starting this server again (starting with it applies it again, which changes nothing while no other server has joined)", path, err)
	}
	if d, err := os.Open(n.cfg.DataDir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	n.logger.Warn("recovered the Raft configuration from a peers file: every entry this server held is kept and now counts as committed; "+
		"the servers of the old configuration must not start again with their data_dir",
		"file", path, "renamed_to", filepath.Base(applied), "servers", describe(conf),
		"last_index", last, "last_term", term, "cluster_id", id, "old_cluster_id", oldID)
	return nil
}

// lastEntry returns the index and term of the last entry this server
// holds, in its log or its newest snapshot (zero when it cannot tell).
func (n *Node) lastEntry() (index, term uint64) {
	if snaps, err := n.snaps.List(); err == nil && len(snaps) > 0 {
		index, term = snaps[0].Index, snaps[0].Term
	}
	if li, err := n.logs.LastIndex(); err == nil && li > index {
		var l raft.Log
		if n.logs.GetLog(li, &l) == nil {
			index, term = l.Index, l.Term
		}
	}
	return index, term
}
