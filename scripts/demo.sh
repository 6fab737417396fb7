#!/usr/bin/env bash
# Installs everything, starts a one-node cluster in the background (state in
# /var/lib/kubesvc, node in its own network namespace) and applies the seed's example.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
state=/var/lib/kubesvc
mkdir -p "$state"
if ! kubesvc status --state-dir "$state" >/dev/null 2>&1; then
    nohup kubesvc up --state-dir "$state" --isolated -v >"$state/kubesvc.log" 2>&1 &
    for _ in $(seq 600); do
        kubesvc status --state-dir "$state" >/dev/null 2>&1 && break
        if ! kill -0 $! 2>/dev/null; then cat "$state/kubesvc.log" >&2; exit 1; fi
        sleep 0.1
    done
fi
kubesvc status --state-dir "$state"
run() { echo "\$ $*"; "$@"; echo; }
run kubesvc kubectl apply -f examples/seed/server.yaml -f examples/seed/service.yaml \
    -f examples/seed/client.yaml
run kubesvc kubectl get all
echo "The cluster keeps running: kubesvc kubectl ... to use it, kubesvc down to stop it."
