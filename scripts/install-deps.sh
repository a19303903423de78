#!/usr/bin/env bash
# Installs what tailer needs to build and test, idempotently:
#   - RocksDB 9.10 headers and library (librocksdb-dev) for grocksdb (cgo).
#     Debian 13 ships it; on Debian 12 we add the trixie suite next to the
#     existing bookworm entry, pinned at priority 100 so nothing else moves.
#   - MinIO (pinned version) into GOPATH/bin, for the S3 integration tests.
# Set TAILER_SKIP_MINIO=1 to skip MinIO (the demo's file:// mode needs none).
set -euo pipefail

MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

log() { printf 'install-deps: %s\n' "$*" >&2; }

rocksdb_version() {
  dpkg-query -W -f='${Version}' librocksdb-dev 2>/dev/null || true
}

install_rocksdb() {
  local have
  have=$(rocksdb_version)
  case "$have" in
    9.10*|9.1[1-9]*|10.*) log "librocksdb-dev $have already installed"; return ;;
  esac
  local codename
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  export DEBIAN_FRONTEND=noninteractive
  if [ "$codename" = "bookworm" ]; then
    local src=/etc/apt/sources.list.d/debian.sources uris
    uris=$(awk '/^URIs:/{print $2; exit}' "$src" 2>/dev/null || true)
    [ -n "$uris" ] || uris="http://deb.debian.org/debian"
    if [ ! -f /etc/apt/sources.list.d/tailer-trixie.sources ]; then
      log "adding Debian trixie suite (pinned at 100) for RocksDB 9.10"
      $SUDO tee /etc/apt/sources.list.d/tailer-trixie.sources >/dev/null <<SRC
Types: deb
URIs: $uris
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
      $SUDO tee /etc/apt/preferences.d/tailer-trixie >/dev/null <<PIN
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
    fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq -t trixie librocksdb-dev >/dev/null
  else
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq librocksdb-dev >/dev/null
  fi
  have=$(rocksdb_version)
  case "$have" in
    9.10*|9.1[1-9]*|10.*) log "installed librocksdb-dev $have" ;;
    *) log "librocksdb-dev $have is too old: tailer needs RocksDB >= 9.10 (SST format_version 6)"; exit 1 ;;
  esac
}

install_tools() {
  # pkg-config helps cgo find libs; lz4 cross-checks the Stalwart-format
  # export files in tests; zstd is used by the benchmark's tar baseline.
  local missing=()
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  command -v lz4 >/dev/null || missing+=(lz4)
  command -v zstd >/dev/null || missing+=(zstd)
  if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    log "installing ${missing[*]}"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

install_minio() {
  local gobin
  gobin=$(go env GOBIN); [ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
  if [ -x "$gobin/minio" ] && [ -f "$gobin/.minio-version" ] && [ "$(cat "$gobin/.minio-version")" = "$MINIO_VERSION" ]; then
    log "minio $MINIO_VERSION already installed at $gobin/minio"
    return
  fi
  log "installing minio $MINIO_VERSION (several minutes the first time)"
  GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION"
  echo "$MINIO_VERSION" > "$gobin/.minio-version"
  log "minio installed at $gobin/minio"
}

install_rocksdb
install_tools
if [ "${TAILER_SKIP_MINIO:-0}" != 1 ]; then install_minio; fi
