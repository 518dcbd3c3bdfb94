#!/usr/bin/env bash
# Runs romap2p's whole test suite: vet, every package's tests, and the race
# detector on the packages with concurrency where it is affordable.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet"
go vet ./...

echo "== go test"
go test -count=1 -timeout 20m ./...

echo "== go test -race"
go test -race -short -count=1 -timeout 15m ./relay/... ./protocol/... ./internal/... ./treebuild/... ./node/...
