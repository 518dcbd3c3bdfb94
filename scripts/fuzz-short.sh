#!/usr/bin/env bash
# Runs every fuzz target of the module for a short time each (FUZZTIME,
# default 10s) and prints the executions per target. Any crash fails the
# script; the failing input is kept under the package's testdata/fuzz as
# usual, so that `go test` replays it from then on.
#
#   scripts/fuzz-short.sh                 # every package, 10 s per target
#   FUZZTIME=1m scripts/fuzz-short.sh ./protocol/
#   FUZZTIME=3000x scripts/fuzz-short.sh  # 3000 executions per target
#
# A count (Nx) is what CI uses: with a duration, Go 1.26's fuzzing
# coordinator can fail a target with "context deadline exceeded" at the end
# of the time, having found nothing (go.dev/issue/75804, fixed in Go 1.27).
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-10s}"
pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
	mapfile -t pkgs < <(go list ./...)
fi

summary=()
failed=0
for pkg in "${pkgs[@]}"; do
	targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
	for target in $targets; do
		echo "== fuzz $pkg $target ($fuzztime)"
		log=$(mktemp)
		if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1; then
			status=ok
		else
			status=FAIL
			failed=1
			cat "$log"
		fi
		# The last progress line holds the total: "execs: N (R/sec)".
		execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | awk '{print $2}')
		rm -f "$log"
		summary+=("$(printf '%-4s %-40s %-24s %12s execs' "$status" "$pkg" "$target" "${execs:-?}")")
	done
done

echo "== fuzz summary ($fuzztime per target)"
printf '%s\n' "${summary[@]}"
exit $failed
