#!/usr/bin/env bash
# Cross-builds the fountain package's tests for linux/arm64 and runs them
# under qemu user-mode emulation, so that the NEON kernels are tested on an
# amd64 machine: once as built by default (NEON tier and portable tier, each
# compared with the other), once with the nopshufb tag (NEON XOR, Go
# multiplication) and once with purego (portable only). Needs Debian's
# qemu-user-static or qemu-user package (apt-get install -y qemu-user-static).
#
# Extra arguments go to the test binary, e.g. -test.run TestTiersAgree.
set -euo pipefail
cd "$(dirname "$0")/.."

qemu=""
for q in qemu-aarch64-static qemu-aarch64; do
	if command -v "$q" >/dev/null 2>&1; then
		qemu=$(command -v "$q")
		break
	fi
done
if [ -z "$qemu" ]; then
	echo "test-arm64: no qemu-aarch64 found; install qemu-user-static (or qemu-user)" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== go vet (linux/arm64)"
GOOS=linux GOARCH=arm64 go vet ./fountain/

for tags in "" nopshufb purego; do
	echo "== fountain tests on linux/arm64 under $(basename "$qemu")${tags:+ (tags: $tags)}"
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go test -c ${tags:+-tags "$tags"} -o "$tmp/fountain.test" ./fountain/
	# The tests read testdata/ relative to the package directory.
	(cd fountain && env -u ROMAP2P_FOUNTAIN_KERNELS "$qemu" "$tmp/fountain.test" -test.short -test.count=1 -test.timeout 10m "$@")
done
