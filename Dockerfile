# tailer's container image: a multi-stage build on Debian 13 (trixie), whose
# librocksdb 9.10 reads the SST files Stalwart 0.16 writes (RocksDB 10.x,
# format_version 6); Debian 12's 7.8.3 cannot. See scripts/install-deps.sh.
#
#   docker build -t tailer .
#   docker run --rm tailer --help
#
# The binary links librocksdb dynamically (cgo, github.com/linxGnu/grocksdb),
# so the runtime stage installs the matching runtime package, librocksdb9.10.

# --- build: Go (>= go.mod's go directive) + librocksdb-dev 9.10 from trixie
FROM docker.io/library/golang:1.26-trixie AS build
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get update \
 && apt-get install -y --no-install-recommends librocksdb-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Modules first: a change to the sources does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# GOTOOLCHAIN=local: build with the image's Go, never fetch another.
RUN CGO_ENABLED=1 GOTOOLCHAIN=local go build -trimpath -ldflags="-s -w" -o /out/tailer ./cmd/tailer \
 && /out/tailer --help >/dev/null

# --- runtime: trixie-slim + the RocksDB 9.10 runtime library
FROM docker.io/library/debian:trixie-slim
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get update \
 && apt-get install -y --no-install-recommends librocksdb9.10 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd -r -g 2000 stalwart \
 && useradd -r -u 2000 -g 2000 -s /usr/sbin/nologin -M stalwart
COPY --from=build /out/tailer /usr/local/bin/tailer
# Stalwart's image runs as uid/gid 2000: tailer must be the same user to
# hard-link the store's files (fs.protected_hardlinks).
USER 2000:2000
# /metrics, /healthz, /readyz (run with --listen 0.0.0.0:9464 in a container).
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/tailer"]
CMD ["run", "--config", "/etc/tailer/tailer.yaml"]
