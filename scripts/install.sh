#!/usr/bin/env bash
# Installs what kubesvc needs on a Debian/Ubuntu host: the kernel tools and programs pods run
# (nftables, iptables, iproute2, nginx, busybox, conntrack) and a virtualenv with kubesvc, its
# libraries and the real kubectl. Idempotent. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (it installs Debian packages and kubesvc manages namespaces)" >&2
    exit 1
fi

packages=(nftables iptables iproute2 nginx-light busybox-static conntrack util-linux
          python3-venv wrk dnsutils)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian may start its own nginx on install; kubesvc runs only per-pod instances.
if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
echo "installed: $(.venv/bin/kubesvc --version), $(.venv/bin/kubectl version --client | head -1)"
