"""sysctls of a network namespace that kubesvc created.

There is deliberately no way to write the calling process's own namespace: kubesvc never turns
on forwarding (or anything else) in the host's namespace.
"""

from __future__ import annotations

from pathlib import Path

from kubesvc.kernel.cmd import run
from kubesvc.kernel.netns import in_netns_argv


def _proc_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


async def set_sysctls(netns: str, values: dict[str, str]) -> None:
    """Write `values` ({"net.ipv4.ip_forward": "1"}) inside `netns`, which must be named."""
    if not values:
        return
    assignments = [f"{key}={value}" for key, value in values.items()]
    await run([*in_netns_argv(netns), "sysctl", "-q", "-w", *assignments])


async def read_sysctl(netns: str | None, key: str) -> str | None:
    """The value of `key` in `netns` (None: the caller's namespace); None if it doesn't exist."""
    if netns is None:
        try:
            return _proc_path(key).read_text().strip()
        except FileNotFoundError:
            return None
    out = await run([*in_netns_argv(netns), "sysctl", "-n", "-e", key], check=False)
    return out.strip() or None
