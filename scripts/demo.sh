#!/usr/bin/env bash
# Installs everything, starts a one-node cluster in the background (state in
# /var/lib/kubesvc, the node in its own network namespace, SQLite state) and replays the
# seed's walkthrough with the real kubectl, printing each command and what it printed.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
state=/var/lib/kubesvc
mkdir -p "$state"
if ! kubesvc status --state-dir "$state" >/dev/null 2>&1; then
    nohup kubesvc up --state-dir "$state" --isolated -v >"$state/kubesvc.log" 2>&1 &
    up=$!
    for _ in $(seq 600); do
        kubesvc status --state-dir "$state" >/dev/null 2>&1 && break
        if ! kill -0 "$up" 2>/dev/null; then cat "$state/kubesvc.log" >&2; exit 1; fi
        sleep 0.1
    done
fi
kubesvc status --state-dir "$state"
echo
kubesvc walkthrough --state-dir "$state"
cat <<MSG
The cluster keeps running (log: $state/kubesvc.log). With PATH="$PWD/.venv/bin:\$PATH":
  kubesvc kubectl get pods -A          use it with the bundled kubectl (or your own: context kubesvc)
  kubesvc ip; kubesvc proxy rules      the node's address; what the service proxy programmed
  kubesvc down                         stop it (pods, rules and the node's namespace go too)
MSG
