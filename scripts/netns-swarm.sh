#!/usr/bin/env bash
# Runs real romap2p processes in network namespaces on emulated access links:
# one `serve` and N `get`s, each host behind its own uplink and downlink
# (tc tbf on both ends of its veth), all on one bridge, addresses in
# 198.18.0.0/24. Needs root, ip and tc; deletes everything it made on exit.
#
#   scripts/netns-swarm.sh [-n RECEIVERS] [-s SIZE_MIB] [-u UP_MBIT] [-d DOWN_MBIT]
#                          [-k STRIPES] [-x SLOW_DOWN_MBIT] [-b ROMAP2P]
#
# With -x, one more receiver joins behind a downlink of SLOW_DOWN_MBIT; the
# script then reports the others' times, which it should barely change.
# Prints one line per receiver: name, seconds, goodput, upstreams, received/K.
# KEEP=1 keeps the files and logs (GOLOG_LOG_LEVEL sets the processes' logs).
set -euo pipefail

n=4 size=32 up=100 down=100 stripes=8 slow="" bin=""
while getopts "n:s:u:d:k:x:b:" o; do
	case $o in
	n) n=$OPTARG ;; s) size=$OPTARG ;; u) up=$OPTARG ;; d) down=$OPTARG ;;
	k) stripes=$OPTARG ;; x) slow=$OPTARG ;; b) bin=$OPTARG ;;
	*) exit 2 ;;
	esac
done
if [ "$(id -u)" != 0 ]; then
	echo "netns-swarm: needs root (network namespaces)" >&2
	exit 2
fi
cd "$(dirname "$0")/.."
work=$(mktemp -d)
if [ -z "$bin" ]; then
	bin=$work/romap2p
	go build -o "$bin" ./cmd/romap2p
fi

tag=rs$$
pids=()
hosts=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for h in "${hosts[@]}"; do ip netns del "$tag-$h" 2>/dev/null || true; done
	ip netns del "$tag-br" 2>/dev/null || true
	if [ -n "${KEEP:-}" ]; then
		echo "kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

ip netns add "$tag-br"
ip -n "$tag-br" link add br0 type bridge
ip -n "$tag-br" link set br0 up

# addhost NAME INDEX UP_MBIT DOWN_MBIT
addhost() {
	local h=$1 i=$2 u=$3 d=$4 ns=$tag-$1
	hosts+=("$h")
	ip netns add "$ns"
	ip link add "h$i$tag" type veth peer name "b$i$tag"
	ip link set "h$i$tag" netns "$ns"
	ip link set "b$i$tag" netns "$tag-br"
	ip -n "$ns" link set "h$i$tag" name eth0
	ip -n "$ns" addr add "198.18.0.$i/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" link set lo up
	ip -n "$tag-br" link set "b$i$tag" master br0
	ip -n "$tag-br" link set "b$i$tag" up
	# Uplink: what leaves the host; downlink: what the bridge sends it.
	ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "${u}mbit" burst 64kb latency 100ms
	ip netns exec "$tag-br" tc qdisc add dev "b$i$tag" root tbf rate "${d}mbit" burst 64kb latency 100ms
}

addhost src 1 "$up" "$down"
for i in $(seq 1 "$n"); do addhost "r$i" $((i + 1)) "$up" "$down"; done
if [ -n "$slow" ]; then addhost slow $((n + 2)) "$up" "$slow"; fi

head -c "$((size << 20))" /dev/urandom >"$work/file.bin"
ip netns exec "$tag-src" "$bin" serve "$work/file.bin" --no-dht --api off --json --stripes "$stripes" \
	--repo "$work/repo-src" --listen /ip4/198.18.0.1/tcp/4001 >"$work/serve.json" 2>"$work/serve.err" &
pids+=($!)
for _ in $(seq 1 100); do
	[ -s "$work/serve.json" ] && break
	sleep 0.1
done
cid=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['cid'])" "$work/serve.json")
addr=$(grep -o '/ip4/198.18.0.1/tcp/4001/p2p/[A-Za-z0-9]*' "$work/serve.json" | head -1)

gets=()
start() {
	local h=$1 i=$2
	ip netns exec "$tag-$h" "$bin" get "$cid" --bootstrap "$addr" --no-dht --api off --json --stripes "$stripes" \
		--repo "$work/repo-$h" -o "$work/out-$h" --listen "/ip4/198.18.0.$i/tcp/4001" >"$work/get-$h.json" 2>"$work/get-$h.err" &
	gets+=("$h:$!")
	pids+=($!)
}
for i in $(seq 1 "$n"); do start "r$i" $((i + 1)); done
if [ -n "$slow" ]; then start slow $((n + 2)); fi

fail=0
for g in "${gets[@]}"; do
	h=${g%%:*} p=${g##*:}
	if [ "$h" = slow ]; then continue; fi
	if ! wait "$p"; then
		echo "$h: get failed: $(tail -1 "$work/get-$h.err")" >&2
		fail=1
		continue
	fi
	cmp -s "$work/file.bin" "$work/out-$h" || { echo "$h: output differs" >&2; fail=1; }
	python3 - "$h" "$work/get-$h.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[2]))
print("%-5s %6.2f s  %6.1f Mbit/s  %d upstreams  %.3f x K" % (sys.argv[1], d["seconds"], d["goodput_bps"] * 8 / 1e6,
      len(d.get("upstreams") or []), d["symbols_in"] / d["symbols_needed"]))
EOF
done
exit $fail
