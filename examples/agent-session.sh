#!/usr/bin/env bash
# A whole wsfs session on PROJECT_DIR (default: a scratch copy of this repository's docs):
# mount it as a workspace, let an "agent" edit through the mount, review, commit.
# Uses the binaries from `cargo build --release --workspace` and a private state dir, so it
# never touches your other workspaces. Needs root, or fusermount3 (apt-get install fuse3).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/target/release"
[ -x "$bin/wsfs" ] && [ -x "$bin/mountd" ] || { echo "build first: cargo build --release --workspace" >&2; exit 1; }
scratch=$(mktemp -d /tmp/wsfs-session.XXXXXX)
project=${1:-}
if [ -z "$project" ]; then
    project="$scratch/project"
    cp -r "$here/docs" "$project"
    echo "== no PROJECT_DIR given: using a scratch copy of docs/ at $project"
fi
export WSFS_STATE_DIR="$scratch/state" WSFS_SOCKET="$scratch/mountd.sock"
wsfs() { "$bin/wsfs" "$@"; }
cleanup() {
    wsfs remove "$(basename "$project")" >/dev/null 2>&1 || true
    pkill -TERM -f "mountd --state-dir $WSFS_STATE_DIR" 2>/dev/null || true
    sleep 0.5; rm -rf "$scratch"
}
trap cleanup EXIT

echo "== wsfs mount $project"
mnt=$(wsfs mount "$project")
echo "   mounted at $mnt (mountd log: $WSFS_STATE_DIR/mountd.log)"

echo "== the agent edits through the mount"
first=$(cd "$mnt" && find . -type f -name '*.md' | head -1)
[ -n "$first" ] || first=./NOTES.md
echo "edited by the agent at $(date -u +%T)" >> "$mnt/$first"
echo "a new file" > "$mnt/AGENT_NOTES.txt"
echo "   host copy of $first unchanged: $(cmp -s "$project/$first" "$mnt/$first" && echo no || echo yes)"

echo "== wsfs status"; (cd "$project" && wsfs status)
echo "== wsfs diff --stat"; (cd "$project" && wsfs diff --stat)
echo "== wsfs log (last 5)"; (cd "$project" && wsfs log | tail -5)
if [ -n "${1:-}" ]; then
    # Your own project: show what a commit would do, then drop the demo edits.
    echo "== wsfs commit --dry-run (your project is left as it was)"; (cd "$project" && wsfs commit --dry-run)
    echo "== wsfs discard"; (cd "$project" && wsfs discard)
else
    echo "== wsfs commit"; (cd "$project" && wsfs commit)
    echo "== host copy now ends with: $(tail -1 "$project/$first")"
fi
