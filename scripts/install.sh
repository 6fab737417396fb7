#!/usr/bin/env bash
# Installs what kubesvc needs on a Debian/Ubuntu host: the kernel tools and programs pods run
# (nftables, iptables, iproute2, nginx, busybox, conntrack), QEMU for the IPVS tests' VM,
# haproxy for the userspace proxy's benchmark, and a virtualenv with kubesvc, its libraries and
# the real kubectl. Idempotent. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (it installs Debian packages and kubesvc manages namespaces)" >&2
    exit 1
fi

packages=(nftables iptables iproute2 nginx-light busybox-static conntrack util-linux
          python3-venv wrk dnsutils qemu-system-x86 haproxy)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian may start its own nginx and haproxy on install; kubesvc runs only its own instances.
for service in nginx haproxy; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
        systemctl disable --now "$service" >/dev/null 2>&1 || true
    fi
done

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
echo "installed: $(.venv/bin/kubesvc --version), $(.venv/bin/kubectl version --client | head -1)"
