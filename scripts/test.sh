#!/usr/bin/env bash
# Installs what tailer's tests need (idempotent), then runs them all:
# unit tests, the uploader conformance suite against a directory and a real
# MinIO, and the end-to-end tests in integration/ (live primary + tailer +
# MinIO + restores compared with the primary). Extra arguments go to
# `go test` (e.g. -run TestWALGap -v). This is the full suite, CI's
# (.ci/run). While editing, `go test -short ./...` is the fast tier (under a
# minute): no MinIO (miniotest.Start skips), no integration/ package, no
# other live-load or long tests; every skip says why.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export PATH="$(go env GOPATH)/bin:$PATH"
go vet ./...
go test -count=1 -timeout 30m "$@" ./...
