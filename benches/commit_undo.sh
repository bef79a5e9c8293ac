#!/usr/bin/env bash
# Times `wsfs commit` of N changed files and `wsfs undo` of that commit (issue 16), a fresh
# workspace per run over one generated tree, and prints the median of each. Needs root (mounts).
#
#   cargo build --release --workspace && benches/commit_undo.sh
#   WSFS_BIN_DIR=/path/to/other/build benches/commit_undo.sh     # compare two builds
#
# Environment: WSFS_BIN_DIR (mountd and wsfs; default target/release), N (changed files, 100),
# RUNS (5), FILES (files in the tree, 5000), WSFS_BENCH_DIR (scratch, /var/tmp/wsfs-undo-bench).
# A build without `wsfs undo` reports the undo row as n/a.
set -euo pipefail
BIN=$(realpath "${WSFS_BIN_DIR:-target/release}")
N=${N:-100}
RUNS=${RUNS:-5}
FILES=${FILES:-5000}
DIR=${WSFS_BENCH_DIR:-/var/tmp/wsfs-undo-bench}

rm -rf "$DIR"
mkdir -p "$DIR/tree" "$DIR/state" "$DIR/run"
for ((i = 0; i < FILES; i++)); do
    d="$DIR/tree/d$((i % 50))"
    [ -d "$d" ] || mkdir "$d"
    head -c 4096 /dev/urandom >"$d/f$i"
done
export WSFS_STATE_DIR="$DIR/state" WSFS_SOCKET="$DIR/run/mountd.sock"
"$BIN/mountd" 2>"$DIR/mountd.log" &
MOUNTD=$!
trap 'kill $MOUNTD 2>/dev/null; wait $MOUNTD 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -S "$WSFS_SOCKET" ] && break; sleep 0.1; done

ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
commits=()
undos=()
for ((r = 0; r < RUNS; r++)); do
    mp="$DIR/mnt$r"
    "$BIN/wsfs" --no-autostart mount "$DIR/tree" --name "r$r" --mountpoint "$mp" >/dev/null
    step=$((FILES / N))
    for ((i = 0; i < N; i++)); do
        j=$((i * step))
        echo "/* run $r */" >>"$mp/d$((j % 50))/f$j"
    done
    sync
    t0=$(ms)
    "$BIN/wsfs" --no-autostart commit "r$r" --include-scratch >/dev/null
    t1=$(ms)
    commits+=($((t1 - t0)))
    if "$BIN/wsfs" --no-autostart undo -w "r$r" >/dev/null 2>&1; then
        t2=$(ms)
        undos+=($((t2 - t1)))
        tail -c 14 "$DIR/tree/d0/f0" | grep -q "run $r" && { echo "undo left the change" >&2; exit 1; }
    fi
    "$BIN/wsfs" --no-autostart unmount "r$r" >/dev/null
    "$BIN/wsfs" --no-autostart remove "r$r" >/dev/null
done
echo "commit $N changes: median $(printf '%s\n' "${commits[@]}" | median) ms (runs: ${commits[*]})"
if [ ${#undos[@]} -gt 0 ]; then
    echo "undo of a $N-change commit: median $(printf '%s\n' "${undos[@]}" | median) ms (runs: ${undos[*]})"
else
    echo "undo of a $N-change commit: n/a (this build has no wsfs undo)"
fi
