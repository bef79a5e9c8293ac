#!/bin/bash
# Counts the FUSE requests an untar of 2,000 small files and its rm -rf send to a wsfs mount
# (docs/benchmarks.md, "Create and remove: what reaches the daemon"). Needs perf, a release
# build (cargo build --release --workspace) and the quick tree's storm.tar (run the workloads
# bench once). B=bin dir, TAR=tarball, MOUNTD_ARGS=extra mountd flags (e.g. --open-mode no-open).
set -e
B=${B:-/work/main/target/release}
TAR=${TAR:-/var/tmp/wsfs-bench/cache/gen-5000-s2000-b8/storm.tar}
T=$(mktemp -d /var/tmp/count.XXXX); mkdir -p $T/proj $T/state
$B/mountd --socket $T/sock --state-dir $T/state ${MOUNTD_ARGS} >$T/mountd.log 2>&1 & MPID=$!
for i in $(seq 50); do [ -S $T/sock ] && break; sleep 0.1; done
curl -sf --unix-socket $T/sock -X POST http://x/v1/workspaces -H content-type:application/json -d "{\"project\":\"$T/proj\",\"name\":\"u\",\"mountpoint\":\"$T/mnt\"}" >/dev/null
MNT=$T/mnt
MIN=$(awk -v m="$MNT" '$5==m {split($3,a,":"); print a[2]}' /proc/self/mountinfo | tail -1)
perf record -q -o $T/u.data -e fuse:fuse_request_send --filter "connection == $MIN" -a -- tar -xf $TAR -C $MNT
echo "untar:"; perf script -i $T/u.data 2>/dev/null | grep -o 'opcode [0-9]* ([A-Z_0-9]*)' | sort | uniq -c | sort -rn
perf record -q -o $T/r.data -e fuse:fuse_request_send --filter "connection == $MIN" -a -- rm -rf $MNT/storm
echo "rm -rf:"; perf script -i $T/r.data 2>/dev/null | grep -o 'opcode [0-9]* ([A-Z_0-9]*)' | sort | uniq -c | sort -rn
umount $MNT; kill $MPID; wait $MPID 2>/dev/null || true
tar -tf $TAR | awk '/\/$/ {d++} !/\/$/ {f++} END {print f" files, "d" dirs in the tarball"}'
