#!/usr/bin/env bash
# tailer demo: a live Stalwart-like primary is written while `tailer run`
# ships it to a bucket; then the bucket is restored (newest state and an
# intermediate point) and each restore is checked, family by family,
# against the primary's state recorded at the same sequence number.
#
#   bash scripts/demo.sh                      # MinIO on 127.0.0.1 (installed if missing)
#   DEMO_BACKEND=file bash scripts/demo.sh    # a local directory as the bucket
#   DEMO_SECONDS=60 DEMO_RATE=1000 bash scripts/demo.sh
#   DEMO_BLOBS=1 bash scripts/demo.sh         # mail in a Stalwart filesystem blob store
#
# DEMO_BLOBS=1 keeps message bodies in a filesystem blob store
# (demo-out/blobs, depth 2) that loadgen purges DEMO_BLOB_PURGE_DELAY
# (default 10s) after a blob's last message goes (Stalwart purges daily;
# the delay must exceed tailer's shipping latency, and tailer starts after
# one second of load, not three, so its first copy of the blob store is
# small), over a longer load (DEMO_SECONDS defaults to 30 then).
# `tailer run --blobs` ships it, both restores add `--blobs-to`, and their
# blob directories are checked against the marks byte for byte
# (`tailer-loadgen verify --blobs`), the intermediate one although the
# purge deleted some of its blobs from the primary since.
#
# Everything lands in ./demo-out (recreated each run).
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND=${DEMO_BACKEND:-minio}
BLOBS=${DEMO_BLOBS:-}
# With blobs the run is longer, so that the purge deletes blobs of the
# intermediate point before the end.
SECONDS_OF_LOAD=${DEMO_SECONDS:-$([ -n "$BLOBS" ] && echo 30 || echo 20)}
RATE=${DEMO_RATE:-400}
PURGE_DELAY=${DEMO_BLOB_PURGE_DELAY:-10s}
HISTORY=$([ -n "$BLOBS" ] && echo 1 || echo 3)
LOADGEN_BLOBS=() RUN_BLOBS=()
if [ -n "$BLOBS" ]; then
  LOADGEN_BLOBS=(--blobs "$PWD/demo-out/blobs" --blob-depth 2 --blob-purge-delay "$PURGE_DELAY")
  RUN_BLOBS=(--blobs "$PWD/demo-out/blobs" --blob-depth 2)
fi
# blob_args NAME: sets BLOBS_TO (restore's --blobs-to for a restore into
# $OUT/NAME) and VERIFY_BLOBS (verify's --blobs for it); empty without
# DEMO_BLOBS. Arrays, so that a path with spaces stays one argument.
blob_args() {
  BLOBS_TO=() VERIFY_BLOBS=()
  if [ -n "$BLOBS" ]; then
    BLOBS_TO=(--blobs-to "$OUT/$1-blobs" --blob-depth 2)
    VERIFY_BLOBS=(--blobs "$OUT/$1-blobs" --blob-depth 2)
  fi
}
OUT=$PWD/demo-out
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2fs", b-a}'; }

say "installing what the demo needs (idempotent)"
if [ "$BACKEND" = file ]; then TAILER_SKIP_MINIO=1 bash scripts/install-deps.sh; else bash scripts/install-deps.sh; fi
export PATH="$(go env GOPATH)/bin:$PATH"

say "building tailer and tailer-loadgen"
mkdir -p bin
go build -o bin/tailer ./cmd/tailer
go build -o bin/tailer-loadgen ./cmd/tailer-loadgen

rm -rf "$OUT"; mkdir -p "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

case "$BACKEND" in
minio)
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  CPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  export AWS_ACCESS_KEY_ID=demo-access AWS_SECRET_ACCESS_KEY=demo-secret-$RANDOM$RANDOM AWS_REGION=us-east-1
  export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
  say "starting MinIO on 127.0.0.1:$PORT"
  MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY MINIO_BROWSER=off \
    minio server --quiet --address "127.0.0.1:$PORT" --console-address "127.0.0.1:$CPORT" "$OUT/minio-data" \
    >"$OUT/minio.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/minio/health/live" >/dev/null && break; sleep 0.2; done
  curl -fs --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -X PUT "http://127.0.0.1:$PORT/demo-bucket" >/dev/null
  REPLICA="s3://demo-bucket/stalwart?endpoint=http://127.0.0.1:$PORT&path-style=true"
  ;;
file) REPLICA="file://$OUT/bucket" ;;
*) echo "DEMO_BACKEND must be minio or file" >&2; exit 2 ;;
esac

say "primary: Stalwart-like load, ${SECONDS_OF_LOAD}s at ${RATE} tx/s (blobs, counters, changelog purges)${BLOBS:+; mail in a filesystem blob store, dead blobs purged after $PURGE_DELAY}"
bin/tailer-loadgen run --db "$OUT/primary" --duration "${SECONDS_OF_LOAD}s" --rate "$RATE" \
  --write-buffer 1MiB --max-wal-size rocksdb --marks "$OUT/marks.jsonl" --mark-every 1000 "${LOADGEN_BLOBS[@]}" \
  >"$OUT/loadgen.out" 2>"$OUT/loadgen.log" &
LOADGEN=$!; PIDS+=($LOADGEN)
sleep "$HISTORY"   # some history before tailer starts

say "tailer run → $BACKEND (while the primary is being written)"
bin/tailer run --db "$OUT/primary" "${RUN_BLOBS[@]}" --scratch "$OUT/scratch" --replica "$REPLICA" \
  --poll 1s --listen 127.0.0.1:0 --log-format text >"$OUT/tailer.log" 2>&1 &
TAILER=$!; PIDS+=($TAILER)
wait "$LOADGEN"
cat "$OUT/loadgen.out"
FINAL=$(tail -n1 "$OUT/marks.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seq"])')

say "waiting until the bucket can restore the primary's final sequence $FINAL"
T=$(now)
for _ in $(seq 300); do
  N=$(bin/tailer list --replica "$REPLICA" --json 2>/dev/null | python3 -c 'import json,sys; g=json.load(sys.stdin); print(max([x["newest_restorable_seq"] for x in g] or [0]))' || echo 0)
  [ "$N" -ge "$FINAL" ] && break; sleep 0.2
done
echo "caught up $(elapsed "$T") after the load stopped"
# The intermediate point: the oldest mark the bucket can restore (tailer's
# first export comes a moment after it starts).
MID=$(bin/tailer list --replica "$REPLICA" --json | python3 -c '
import json, sys
first = min(g["first_seq"] for g in json.load(sys.stdin))
seqs = [m["seq"] for m in map(json.loads, open(sys.argv[1])) if first <= m["seq"] < int(sys.argv[2])]
print(seqs[0] if seqs else sys.argv[2])' "$OUT/marks.jsonl" "$FINAL")
kill -TERM "$TAILER"; wait "$TAILER" || { echo "tailer exited non-zero"; tail -20 "$OUT/tailer.log"; exit 1; }
echo "tailer stopped on SIGTERM with exit 0"

say "tailer list"
bin/tailer list --replica "$REPLICA"

say "restore newest state"
T=$(now)
blob_args restored-latest
bin/tailer restore --replica "$REPLICA" --to "$OUT/restored-latest" "${BLOBS_TO[@]}" --log-format text 2>"$OUT/restore-latest.log"
echo "restore took $(elapsed "$T")"
bin/tailer-loadgen verify --db "$OUT/restored-latest" --marks "$OUT/marks.jsonl" --seq "$FINAL" "${VERIFY_BLOBS[@]}"

say "restore an intermediate point: seq $MID"
blob_args restored-mid
bin/tailer restore --replica "$REPLICA" --to "$OUT/restored-mid" --seq "$MID" "${BLOBS_TO[@]}" --log-format text 2>"$OUT/restore-mid.log"
bin/tailer-loadgen verify --db "$OUT/restored-mid" --marks "$OUT/marks.jsonl" --seq "$MID" "${VERIFY_BLOBS[@]}"
if [ -n "$BLOBS" ]; then
  GONE=$(python3 -c '
import json, os, sys
m = [m for m in map(json.loads, open(sys.argv[1])) if m["seq"] == int(sys.argv[2])][0]
on_disk = {f for _, _, fs in os.walk(sys.argv[3]) for f in fs}
names = m["blobs"]["names"]
print(sum(n not in on_disk for n in names), len(names))' \
    "$OUT/marks.jsonl" "$MID" "$OUT/blobs")
  set -- $GONE
  echo "the purge deleted $1 of the $2 blobs of seq $MID from the primary since; the restore brought back all $2"
fi

say "tailer changes: Stalwart's changelog as recorded in the bucket (last 5 lines)"
bin/tailer changes --replica "$REPLICA" | tail -n 5
bin/tailer list --replica "$REPLICA" --accounts | sed -n 1,6p

say "restore by Stalwart change id: the change written by the batch ending at seq $MID"
PICK=$(bin/tailer changes --replica "$REPLICA" --json | python3 -c '
import json, sys
mid = int(sys.argv[1])
hits = [c for c in map(json.loads, sys.stdin) if c["last_seq"] == mid]
if hits:
    print(hits[0]["account"], hits[0]["change_id"])' "$MID")
if [ -n "$PICK" ]; then
  set -- $PICK
  bin/tailer restore --replica "$REPLICA" --to "$OUT/restored-change" --account "$1" --change-id "$2" --log-format text 2>"$OUT/restore-change.log"
  bin/tailer-loadgen verify --db "$OUT/restored-change" --marks "$OUT/marks.jsonl" --seq "$MID" | tail -n 1
else
  echo "(the transaction at seq $MID touched no account's changelog; skipped)"
fi

say "restore by time: the state 2 seconds before the load stopped"
WHEN=$(python3 -c '
import datetime, json, re, sys
m = [json.loads(l) for l in open(sys.argv[1])][-1]
t = datetime.datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", m["time"]).replace("Z", "+00:00"))
print((t - datetime.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")' "$OUT/marks.jsonl")
bin/tailer restore --replica "$REPLICA" --to "$OUT/restored-time" --time "$WHEN" --log-format text 2>"$OUT/restore-time.log"

say "sizes"
BUCKET_BYTES=$(bin/tailer list --replica "$REPLICA" --json | python3 -c 'import json,sys; print(sum(x["bytes"] for x in json.load(sys.stdin)))')
printf 'primary store on disk: %s\n' "$(du -sh "$OUT/primary" | cut -f1)"
printf 'bucket (all objects):  %s bytes\n' "$BUCKET_BYTES"
printf 'restored store:        %s\n' "$(du -sh "$OUT/restored-latest" | cut -f1)"
if [ -n "$BLOBS" ]; then
  printf 'primary blob store:    %s in %s files\n' "$(du -sh "$OUT/blobs" | cut -f1)" "$(find "$OUT/blobs" -type f | wc -l)"
  printf 'restored blob store:   %s in %s files\n' "$(du -sh "$OUT/restored-latest-blobs" | cut -f1)" "$(find "$OUT/restored-latest-blobs" -type f | wc -l)"
  if grep -q "BLOB MISSING" "$OUT/tailer.log"; then echo "tailer reported missing blobs:"; grep "BLOB MISSING" "$OUT/tailer.log"; exit 1; fi
fi
grep -h "export sealed" "$OUT/tailer.log" | sed 's/^/tailer: /' || true
say "demo OK: every verified restore equals the primary at its sequence number"
