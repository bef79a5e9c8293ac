#!/usr/bin/env bash
# A whole wsfs session on PROJECT_DIR (default: a scratch copy of this repository's docs):
# let an "agent" edit it through `wsfs run` (a workspace mounted by mountd, shown at the
# project's own path in a private mount namespace), review, commit.
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

echo "== wsfs run: an \"agent\" edits $project in a private mount namespace"
# Inside, the project's own path shows the workspace; the rest of the host sees nothing.
# (With Docker: `wsfs up $project --image IMG` then `wsfs exec NAME -- CMD`, same paths.)
wsfs run "$project" -- sh -c '
    first=$(find . -type f -name "*.md" | sort | head -1); first=${first:-./NOTES.md}
    echo "edited by the agent at $(date -u +%T)" >> "$first"
    echo "a new file" > AGENT_NOTES.txt
    echo "   agent edited $first and wrote AGENT_NOTES.txt in $(pwd)"'
first=$(cd "$project" && find . -type f -name '*.md' | sort | head -1)
echo "   host project untouched: AGENT_NOTES.txt on host? $([ -e "$project/AGENT_NOTES.txt" ] && echo yes || echo no)"

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
