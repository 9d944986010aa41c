#!/usr/bin/env bash
# tlsnomad.sh starts, on one Linux host, a Nomad with mutual TLS and ACLs
# for the tests that run against a real Nomad (NOMAD_ADDR, with
# NOMAD_CACERT, NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY): the deploy tests
# (TestDeployJobsOnRealNomad, TestDeployStaticTokenJobsOnRealNomad,
# TestAgentWithWorkloadIdentityOnRealNomad), the agent's reads
# (TestAgentAgainstRealNomad, TestAgentRefusedTokenOnRealNomad) and the
# moves off a disconnected node (e2e/disconnect_nomad_test.go, which take
# tlsc2 down and up) in e2e/, and the others docs/deployment.md's "Under
# Nomad's mutual TLS" lists.
#
# What it starts (under its own ports, names and directory, so it stays
# apart from any Nomad already on the host, which it never touches):
#
#   tlsvm: a Nomad server and client in one agent, datacenter dc1, on
#     127.0.0.1 ports 5646 (HTTP), 5647 (RPC), 5648 (Serf);
#     bootstrap_expect 1; raw_exec on. Not -dev, although -dev takes the
#     same tls block (tried once): a server as in production, its data
#     and ACL bootstrap kept until down.
#   tlsc2: a second client node, datacenter dc2, HTTP on 127.0.0.1:5666,
#     joined to tlsvm's RPC port; raw_exec on
#
# Both have ACLs on and
#   tls { http = true, rpc = true, verify_server_hostname = true,
#         verify_https_client = true }
# with certificates made here by `nomad tls ca create` and `nomad tls cert
# create -server` (tlsvm), `-client` (tlsc2) and `-cli` (the tests' and
# the CLI's client certificate). The ACLs are bootstrapped over HTTPS
# with the cli certificate; the management token is kept in
# $TLSN_DIR/token.
#
# Two clients on one host (four with another Nomad's two beside them, as
# when this was measured): each has its own data_dir, alloc_dir and ports.
# On cgroups v1 Nomad 2.0.6-dev puts every client's tasks under /nomad
# whatever cgroup_parent says (its cgroupslib.NomadCgroupParent), each in
# a cgroup named ALLOC.TASK, so the clients share /nomad and its cpuset
# partitions without a name colliding: the tests passed so. On cgroups
# v2 each client here gets a slice of its own (nomad-tls.slice,
# nomad-tls-c2.slice; not tried).
# Their consul blocks advertise nothing and join nothing: the Consul on
# 127.0.0.1:8500 sees no registration of theirs (the deploy test's agents
# register there themselves).
#
# Needs the binary at $NOMAD_BIN (Nomad 2.0.6-dev was used). Everything is
# written under $TLSN_DIR (default /tmp/nomad-tls).
#
# Usage:
#   e2e/testdata/tlsnomad.sh up      # start it; waits for 2 ready nodes
#   e2e/testdata/tlsnomad.sh status  # nomad node status
#   eval "$(e2e/testdata/tlsnomad.sh env)"
#   go test -count=1 -timeout 40m -run 'TestAgentAgainstRealNomad|TestAgentRefusedTokenOnRealNomad' -v ./e2e/
#   e2e/testdata/tlsnomad.sh down    # stop its jobs and agents, remove $TLSN_DIR/data
#
# The env the tests need (what "env" prints):
#   NOMAD_ADDR=https://127.0.0.1:5646
#   NOMAD_CACERT, NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY: the CA and the cli
#     certificate and key
#   NOMAD_TOKEN=NOMAD_MANAGEMENT_TOKEN=the management token
#   NOMAD_DOWN_NODE=tlsc2, NOMAD_NODE_DOWN_CMD and NOMAD_NODE_UP_CMD: kill
#     -STOP and kill -CONT of tlsc2's agent by its pid in $TLSN_DIR/c2.pid
#     (its tasks run on), for the tests that take a node down
#     (internal/realnomad's NodeDownUp); down continues it if a test left
#     it stopped
# (CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN for the deploy test are the
# Consul's, set apart.)
set -euo pipefail

NOMAD_BIN=${NOMAD_BIN:-/tmp/nomad-dev/bin/nomad}
TLSN_DIR=${TLSN_DIR:-/tmp/nomad-tls}
CERTS=$TLSN_DIR/tls
ADDR=https://127.0.0.1:5646

log() { echo "tlsnomad: $*" >&2; }

certs() {
	mkdir -p "$CERTS"
	if [ -e "$CERTS/nomad-agent-ca.pem" ]; then
		return
	fi
	(
		cd "$CERTS"
		"$NOMAD_BIN" tls ca create
		"$NOMAD_BIN" tls cert create -server
		"$NOMAD_BIN" tls cert create -client
		"$NOMAD_BIN" tls cert create -cli
	) >&2
}

# tls_block CERT: the agent's tls block with global-CERT-nomad.pem.
tls_block() {
	cat <<EOF
tls {
  http                   = true
  rpc                    = true
  ca_file                = "$CERTS/nomad-agent-ca.pem"
  cert_file              = "$CERTS/global-$1-nomad.pem"
  key_file               = "$CERTS/global-$1-nomad-key.pem"
  verify_server_hostname = true
  verify_https_client    = true
}
EOF
}

common() {
	cat <<EOF
bind_addr            = "127.0.0.1"
disable_update_check = true
advertise {
  http = "127.0.0.1"
  rpc  = "127.0.0.1"
  serf = "127.0.0.1"
}
acl {
  enabled = true
}
consul {
  auto_advertise   = false
  server_auto_join = false
  client_auto_join = false
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
EOF
}

# cgroup_parent NAME: the client's cgroup_parent line on cgroups v2,
# NAME.slice; none on v1, where Nomad uses /nomad whatever it says.
cgroup_parent() {
	if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
		echo "  cgroup_parent     = \"$1.slice\""
	fi
}

configs() {
	mkdir -p "$TLSN_DIR/data/vm" "$TLSN_DIR/data/c2"
	{
		cat <<EOF
name       = "tlsvm"
datacenter = "dc1"
data_dir   = "$TLSN_DIR/data/vm"
ports {
  http = 5646
  rpc  = 5647
  serf = 5648
}
server {
  enabled          = true
  bootstrap_expect = 1
}
client {
  enabled           = true
  network_interface = "lo"
  alloc_dir         = "$TLSN_DIR/data/vm/alloc"
$(cgroup_parent nomad-tls)
  options {
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }
}
EOF
		common
		tls_block server
	} >"$TLSN_DIR/agent.hcl"
	{
		cat <<EOF
name       = "tlsc2"
datacenter = "dc2"
data_dir   = "$TLSN_DIR/data/c2"
ports {
  http = 5666
  rpc  = 5667
  serf = 5668
}
server {
  enabled = false
}
client {
  enabled           = true
  servers           = ["127.0.0.1:5647"]
  network_interface = "lo"
  alloc_dir         = "$TLSN_DIR/data/c2/alloc"
$(cgroup_parent nomad-tls-c2)
  options {
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }
}
EOF
		common
		tls_block client
	} >"$TLSN_DIR/c2.hcl"
}

nomadc() {
	NOMAD_ADDR=$ADDR NOMAD_CACERT=$CERTS/nomad-agent-ca.pem \
		NOMAD_CLIENT_CERT=$CERTS/global-cli-nomad.pem NOMAD_CLIENT_KEY=$CERTS/global-cli-nomad-key.pem \
		NOMAD_TOKEN=$(cat "$TLSN_DIR/token" 2>/dev/null || true) "$NOMAD_BIN" "$@"
}

await() {
	local what=$1 tries=$2
	shift 2
	for _ in $(seq "$tries"); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 1
	done
	log "gave up waiting for $what (logs in $TLSN_DIR/*.log)"
	return 1
}

ready_nodes() {
	[ "$(nomadc node status -t '{{range .}}{{if eq .Status "ready"}}x{{end}}{{end}}')" = xx ]
}

# start NAME CONFIG: starts an agent in the background, its output in
# $TLSN_DIR/NAME.log and its pid in $TLSN_DIR/NAME.pid.
start() {
	setsid "$NOMAD_BIN" agent -config "$2" >"$TLSN_DIR/$1.log" 2>&1 </dev/null &
	echo $! >"$TLSN_DIR/$1.pid"
}

up() {
	for name in vm c2; do
		if [ -e "$TLSN_DIR/$name.pid" ] && kill -0 "$(cat "$TLSN_DIR/$name.pid")" 2>/dev/null; then
			log "$name runs already (pid $(cat "$TLSN_DIR/$name.pid")): run '$0 down' first"
			exit 1
		fi
	done
	certs
	configs
	start vm "$TLSN_DIR/agent.hcl"
	if [ ! -e "$TLSN_DIR/token" ]; then
		cat /proc/sys/kernel/random/uuid >"$TLSN_DIR/token"
	fi
	# Over HTTPS with the cli certificate; a second bootstrap (data kept
	# from an earlier up) is refused, and the token from the first holds.
	await "the Nomad server's ACL bootstrap" 60 nomadc acl bootstrap "$TLSN_DIR/token" ||
		await "the management token" 5 nomadc acl token self
	start c2 "$TLSN_DIR/c2.hcl"
	await "two ready Nomad nodes" 120 ready_nodes
	status
	log "up; for the tests: eval \"\$($0 env)\""
}

status() {
	nomadc node status -t '{{range .}}{{.Name}} {{.Datacenter}} {{.Address}} {{.Status}} {{.SchedulingEligibility}}{{"\n"}}{{end}}'
}

# task_procs: the processes in the cgroups of this Nomad's allocations,
# named ALLOC.TASK (ALLOC.TASK.scope on cgroups v2), whichever parent
# they are under.
task_procs() {
	local id
	for id in $(ls "$TLSN_DIR"/data/*/alloc 2>/dev/null | grep -E '^[0-9a-f-]{36}$' || true); do
		find /sys/fs/cgroup -maxdepth 4 -type d -name "$id.*" -exec cat {}/cgroup.procs \; 2>/dev/null || true
	done | sort -u
}

# held_procs: the processes that name a path under $TLSN_DIR/data in
# their arguments or hold a file there open: Nomad's executors and log
# monitors of this Nomad's tasks.
held_procs() {
	local p
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" = $$ ] && continue
		if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q "$TLSN_DIR/data/" ||
			ls -l "$p/fd" 2>/dev/null | grep -q " $TLSN_DIR/data/"; then
			echo "${p#/proc/}"
		fi
	done
}

down() {
	# The jobs first, so that Nomad stops their tasks itself.
	if [ -e "$TLSN_DIR/vm.pid" ] && kill -0 "$(cat "$TLSN_DIR/vm.pid")" 2>/dev/null; then
		for job in $(nomadc job status -t '{{range .}}{{.ID}} {{end}}' 2>/dev/null || true); do
			nomadc job stop -purge -detach "$job" >/dev/null 2>&1 || true
		done
		sleep 5
	fi
	for name in c2 vm; do
		[ -e "$TLSN_DIR/$name.pid" ] || continue
		# A stopped agent (NOMAD_NODE_DOWN_CMD, its test killed before it
		# ran NOMAD_NODE_UP_CMD) handles no signal until continued: a
		# stopped tlsc2 was killed after the 30 s below, where continued
		# it stopped and down took 14 s.
		kill -CONT "$(cat "$TLSN_DIR/$name.pid")" 2>/dev/null || true
		kill -INT "$(cat "$TLSN_DIR/$name.pid")" 2>/dev/null || true
	done
	for _ in $(seq 30); do
		alive=0
		for name in c2 vm; do
			[ -e "$TLSN_DIR/$name.pid" ] && kill -0 "$(cat "$TLSN_DIR/$name.pid")" 2>/dev/null && alive=1
		done
		[ $alive = 0 ] && break
		sleep 1
	done
	# A task the clients left running (a job not stopped above) is in its
	# allocation's cgroups; the executors and log monitors they leave hold
	# files under $TLSN_DIR/data.
	for pid in $(task_procs) $(held_procs); do
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -f "$TLSN_DIR"/*.pid
	# The clients' alloc dirs hold mounts of the tasks' secrets.
	grep " $TLSN_DIR/data/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	rm -rf "$TLSN_DIR/data" "$TLSN_DIR/token"
	log "down (certificates kept in $CERTS)"
}

env_() {
	cat <<EOF
export NOMAD_ADDR=$ADDR
export NOMAD_CACERT=$CERTS/nomad-agent-ca.pem
export NOMAD_CLIENT_CERT=$CERTS/global-cli-nomad.pem
export NOMAD_CLIENT_KEY=$CERTS/global-cli-nomad-key.pem
export NOMAD_TOKEN=$(cat "$TLSN_DIR/token")
export NOMAD_MANAGEMENT_TOKEN=$(cat "$TLSN_DIR/token")
export NOMAD_DOWN_NODE=tlsc2
export NOMAD_NODE_DOWN_CMD='kill -STOP "\$(cat $TLSN_DIR/c2.pid)"'
export NOMAD_NODE_UP_CMD='kill -CONT "\$(cat $TLSN_DIR/c2.pid)"'
EOF
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
env) env_ ;;
*)
	echo "usage: $0 up|status|env|down" >&2
	exit 2
	;;
esac
