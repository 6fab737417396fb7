"""host-local IPAM: pod IPs from the node's pod CIDR, one file per allocated IP.

The layout follows the CNI host-local plugin: a directory per range holding a file named by
each allocated IP (its content: the pod uid) and `last_reserved_ip`, so allocation continues
after the last IP handed out instead of reusing a just-released one at once.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path


class IPAMExhausted(Exception):
    """Every address of the pod CIDR is taken."""


class IPAM:
    def __init__(self, state_dir: Path, cidr: str, gateway: str | None = None) -> None:
        self.network = ipaddress.IPv4Network(cidr)
        self.gateway = ipaddress.IPv4Address(gateway or self.network.network_address + 1)
        self.dir = state_dir / "ipam" / str(self.network).replace("/", "_")

    def allocations(self) -> dict[str, str]:
        """Allocated IP -> pod uid."""
        if not self.dir.is_dir():
            return {}
        found = {}
        for path in self.dir.iterdir():
            try:
                ip = ipaddress.IPv4Address(path.name)
            except ValueError:
                continue  # last_reserved_ip, temporary files
            found[str(ip)] = path.read_text().strip()
        return found

    def lookup(self, uid: str) -> str | None:
        return next((ip for ip, owner in self.allocations().items() if owner == uid), None)

    def allocate(self, uid: str) -> str:
        """The pod's IP: the one it already holds, else the next free one."""
        held = self.lookup(uid)
        if held is not None:
            return held
        self.dir.mkdir(parents=True, exist_ok=True)
        candidates = self._candidates()
        last = self._last_reserved()
        if last in candidates:
            # Continue after the last reservation, wrapping around.
            at = candidates.index(last) + 1
            candidates = candidates[at:] + candidates[:at]
        for ip in candidates:
            try:
                fd = os.open(self.dir / str(ip), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as f:
                f.write(uid + "\n")
            (self.dir / "last_reserved_ip").write_text(str(ip))
            return str(ip)
        raise IPAMExhausted(f"no free IP left in pod CIDR {self.network}")

    def release(self, uid: str) -> None:
        for ip, owner in self.allocations().items():
            if owner == uid:
                (self.dir / ip).unlink(missing_ok=True)

    def _candidates(self) -> list[ipaddress.IPv4Address]:
        return [ip for ip in self.network.hosts() if ip != self.gateway]

    def _last_reserved(self) -> ipaddress.IPv4Address | None:
        try:
            return ipaddress.IPv4Address((self.dir / "last_reserved_ip").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
