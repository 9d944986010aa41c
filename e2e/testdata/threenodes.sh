#!/usr/bin/env bash
# threenodes.sh builds, on one Linux host, the three Nomad nodes that
# TestServersRollingUpdateOnRealNomad (e2e/servers_nomad_test.go) runs
# deploy/foreshape-servers.nomad.hcl on: three client nodes on distinct,
# non-loopback addresses, each with a local Consul agent, under Nomad's and
# Consul's ACLs.
#
# What it builds (all of it under the names below, so it stays apart from
# any Nomad or Consul already on the host, which it never touches):
#
#   bridge fsbr0, 10.88.0.1/24 on the host (the test's artifact address)
#   network namespace fsn0, 10.88.0.10: a Consul server (bootstrap_expect 1,
#     ACLs on, default deny) and a Nomad server (bootstrap_expect 1, ACLs
#     on, bootstrapped with the management token below), default ports
#   network namespaces fsn1..fsn3, 10.88.0.11..13, each a Nomad client node
#     (fsn1..fsn3, datacenter dc1, network_interface eth0, raw_exec on,
#     exec denied so the test runs the servers with raw_exec) and a Consul
#     client agent on 127.0.0.1:8500 in that namespace, the node's Consul
#
# Each namespace gets a veth pair to the bridge and its loopback up. The
# agents enter the namespace's network only (nsenter --net), not a mount
# namespace, so they see the host's files and cgroups. Everything they
# write is under $FS3_DIR (default /tmp/foreshape-threenodes).
#
# Needs root, iproute2 with bridge and veth support, nsenter, and the
# binaries at $NOMAD_BIN and $CONSUL_BIN (Nomad 2.0.6 and Consul 1.22.0
# were used).
#
# Usage:
#   e2e/testdata/threenodes.sh up      # build it; waits for 3 ready nodes
#   e2e/testdata/threenodes.sh status  # nomad node status, consul members
#   eval "$(e2e/testdata/threenodes.sh env)"
#   go test -count=1 -timeout 30m -run TestServersRollingUpdateOnRealNomad -v ./e2e/
#   e2e/testdata/threenodes.sh down    # stop the agents, remove it all
#
# The env the test needs (what "env" prints):
#   NOMAD_ADDR=http://10.88.0.10:4646
#   NOMAD_TOKEN=NOMAD_MANAGEMENT_TOKEN=<the Nomad management token below>
#   CONSUL_HTTP_ADDR=http://10.88.0.10:8500
#   CONSUL_HTTP_TOKEN=<the Consul management token below>
#   FORESHAPE_E2E_ARTIFACT_HOST=10.88.0.1
#
# The tokens are fixed so that the recipe is repeatable: this set-up is for
# tests on one host, not for anything reachable from elsewhere.
set -euo pipefail

NOMAD_BIN=${NOMAD_BIN:-/tmp/nomad-dev/bin/nomad}
CONSUL_BIN=${CONSUL_BIN:-/tmp/consulbuild/bin/consul}
FS3_DIR=${FS3_DIR:-/tmp/foreshape-threenodes}

NOMAD_MGMT=8e0d54b5-6c43-4f0e-9d5f-3a0e6c2b7a11
CONSUL_MGMT=5b7f3c2e-1d9a-4e8b-b6c4-2f1a0d9e8c33

BRIDGE=fsbr0
HOST_IP=10.88.0.1
SERVER_IP=10.88.0.10
NODES=(1 2 3)

log() { echo "threenodes: $*" >&2; }

# inns NS CMD...: runs CMD in namespace NS's network only.
inns() {
	local ns=$1
	shift
	nsenter --net=/var/run/netns/"$ns" "$@"
}

# start NAME NS CMD...: starts CMD in the background in NS, its output in
# $FS3_DIR/NAME.log and its pid in $FS3_DIR/NAME.pid.
start() {
	local name=$1 ns=$2
	shift 2
	inns "$ns" setsid "$@" >"$FS3_DIR/$name.log" 2>&1 </dev/null &
	echo $! >"$FS3_DIR/$name.pid"
}

netns() {
	local ns=$1 ip=$2 veth=$3
	ip netns add "$ns"
	ip link add "$veth" type veth peer name eth0 netns "$ns"
	ip link set "$veth" master "$BRIDGE" up
	ip netns exec "$ns" ip addr add "$ip/24" dev eth0
	ip netns exec "$ns" ip link set eth0 up
	ip netns exec "$ns" ip link set lo up
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
	log "gave up waiting for $what (logs in $FS3_DIR)"
	return 1
}

consul_config() {
	local dir=$1 name=$2 bind=$3 server=$4
	mkdir -p "$dir/data"
	cat >"$dir/consul.hcl" <<EOF
node_name      = "$name"
data_dir       = "$dir/data"
bind_addr      = "$bind"
advertise_addr = "$bind"
log_level      = "INFO"
ports {
  dns = -1
}
acl {
  enabled                  = true
  default_policy           = "deny"
  enable_token_persistence = true
  tokens {
    initial_management = "$CONSUL_MGMT"
    agent              = "$CONSUL_MGMT"
  }
}
EOF
	if [ "$server" = server ]; then
		cat >>"$dir/consul.hcl" <<EOF
server           = true
bootstrap_expect = 1
client_addr      = "127.0.0.1 $SERVER_IP"
EOF
	else
		cat >>"$dir/consul.hcl" <<EOF
client_addr = "127.0.0.1"
retry_join  = ["$SERVER_IP"]
EOF
	fi
}

nomad_server_config() {
	local dir=$1
	mkdir -p "$dir/data"
	cat >"$dir/nomad.hcl" <<EOF
name                 = "fsn0"
datacenter           = "dc1"
bind_addr            = "$SERVER_IP"
data_dir             = "$dir/data"
disable_update_check = true
server {
  enabled          = true
  bootstrap_expect = 1
}
acl {
  enabled = true
}
consul {
  address          = "127.0.0.1:8500"
  token            = "$CONSUL_MGMT"
  auto_advertise   = false
  server_auto_join = false
  client_auto_join = false
}
EOF
}

nomad_client_config() {
	local dir=$1 name=$2 ip=$3
	mkdir -p "$dir/data"
	cat >"$dir/nomad.hcl" <<EOF
name                 = "$name"
datacenter           = "dc1"
bind_addr            = "$ip"
data_dir             = "$dir/data"
disable_update_check = true
server {
  enabled = false
}
client {
  enabled           = true
  servers           = ["$SERVER_IP:4647"]
  network_interface = "eth0"
  cgroup_parent     = "foreshape-threenodes-$name"
  options {
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
    "driver.denylist"      = "exec,docker,java,qemu,podman"
  }
}
acl {
  enabled = true
}
consul {
  address          = "127.0.0.1:8500"
  token            = "$CONSUL_MGMT"
  auto_advertise   = false
  client_auto_join = false
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
EOF
}

nomadc() { NOMAD_ADDR=http://$SERVER_IP:4646 NOMAD_TOKEN=$NOMAD_MGMT "$NOMAD_BIN" "$@"; }
consulc() { CONSUL_HTTP_ADDR=http://$SERVER_IP:8500 CONSUL_HTTP_TOKEN=$CONSUL_MGMT "$CONSUL_BIN" "$@"; }

ready_nodes() {
	[ "$(nomadc node status -t '{{range .}}{{if eq .Status "ready"}}x{{end}}{{end}}')" = xxx ]
}

consul_members() {
	[ "$(consulc members | grep -c ' alive ')" = 4 ]
}

up() {
	if ip link show "$BRIDGE" >/dev/null 2>&1; then
		log "$BRIDGE exists already: run '$0 down' first"
		exit 1
	fi
	mkdir -p "$FS3_DIR"
	ip link add "$BRIDGE" type bridge
	ip addr add "$HOST_IP/24" dev "$BRIDGE"
	ip link set "$BRIDGE" up
	netns fsn0 "$SERVER_IP" fsv0
	for i in "${NODES[@]}"; do
		netns "fsn$i" "10.88.0.1$i" "fsv$i"
	done

	consul_config "$FS3_DIR/consul0" fsn0 "$SERVER_IP" server
	start consul0 fsn0 "$CONSUL_BIN" agent -config-file "$FS3_DIR/consul0/consul.hcl"
	await "the Consul server's leader" 60 consulc operator raft list-peers
	nomad_server_config "$FS3_DIR/nomad0"
	start nomad0 fsn0 "$NOMAD_BIN" agent -config "$FS3_DIR/nomad0/nomad.hcl"
	echo "$NOMAD_MGMT" >"$FS3_DIR/nomad-bootstrap-token"
	await "the Nomad server's ACL bootstrap" 60 \
		"$NOMAD_BIN" acl bootstrap -address "http://$SERVER_IP:4646" "$FS3_DIR/nomad-bootstrap-token"

	for i in "${NODES[@]}"; do
		consul_config "$FS3_DIR/consul$i" "fsn$i" "10.88.0.1$i" client
		start "consul$i" "fsn$i" "$CONSUL_BIN" agent -config-file "$FS3_DIR/consul$i/consul.hcl"
		nomad_client_config "$FS3_DIR/nomad$i" "fsn$i" "10.88.0.1$i"
		start "nomad$i" "fsn$i" "$NOMAD_BIN" agent -config "$FS3_DIR/nomad$i/nomad.hcl"
	done
	await "three ready Nomad nodes" 120 ready_nodes
	await "four Consul members" 60 consul_members
	status
	log "up; for the test: eval \"\$($0 env)\""
}

status() {
	nomadc node status -verbose
	nomadc node status -t '{{range .}}{{.Name}} {{.Address}} {{.Status}} {{.SchedulingEligibility}}{{"\n"}}{{end}}'
	consulc members
}

down() {
	for f in "$FS3_DIR"/*.pid; do
		[ -e "$f" ] || continue
		kill -INT "$(cat "$f")" 2>/dev/null || true
	done
	sleep 3
	# What the agents started (the tasks, Nomad's executors and logmons)
	# runs in the namespaces too.
	for ns in fsn0 fsn1 fsn2 fsn3; do
		if ip netns list | grep -qw "$ns"; then
			for pid in $(ip netns pids "$ns"); do
				kill -KILL "$pid" 2>/dev/null || true
			done
		fi
	done
	sleep 1
	for ns in fsn0 fsn1 fsn2 fsn3; do
		ip netns del "$ns" 2>/dev/null || true
	done
	ip link del "$BRIDGE" 2>/dev/null || true
	# The clients' alloc dirs hold mounts of the tasks' secrets.
	grep " $FS3_DIR/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	rm -rf "$FS3_DIR"
	log "down"
}

env_() {
	cat <<EOF
export NOMAD_ADDR=http://$SERVER_IP:4646
export NOMAD_TOKEN=$NOMAD_MGMT
export NOMAD_MANAGEMENT_TOKEN=$NOMAD_MGMT
export CONSUL_HTTP_ADDR=http://$SERVER_IP:8500
export CONSUL_HTTP_TOKEN=$CONSUL_MGMT
export FORESHAPE_E2E_ARTIFACT_HOST=$HOST_IP
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
