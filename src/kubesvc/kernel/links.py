"""Links, addresses and routes, through iproute2's `ip` (one `-batch` per step)."""

from __future__ import annotations

import ipaddress
import json

from kubesvc.kernel.cmd import run


def _ip(netns: str | None) -> list[str]:
    return ["ip"] if netns is None else ["ip", "-n", netns]


async def ip_batch(netns: str | None, commands: list[str]) -> None:
    """Run `ip` commands (without the leading `ip`) in one process inside `netns`."""
    if commands:
        await run([*_ip(netns), "-batch", "-"], input="\n".join(commands) + "\n")


async def link_exists(netns: str | None, name: str) -> bool:
    out = await run([*_ip(netns), "-o", "link", "show", "dev", name], check=False)
    return bool(out.strip())


async def delete_link(netns: str | None, name: str) -> None:
    """Delete `name` if present (deleting one end of a veth pair deletes both)."""
    if await link_exists(netns, name):
        await run([*_ip(netns), "link", "delete", "dev", name])


async def ipv4_interfaces(
    netns: str | None, dev: str | None = None
) -> list[ipaddress.IPv4Interface]:
    """The IPv4 addresses (with prefix) of `dev`, or of every link when dev is None."""
    argv = [*_ip(netns), "-j", "-4", "addr", "show"] + (["dev", dev] if dev else [])
    out = await run(argv, check=False)
    found = []
    for link in json.loads(out or "[]"):
        for addr in link.get("addr_info", []):
            found.append(ipaddress.IPv4Interface(f"{addr['local']}/{addr['prefixlen']}"))
    return found


async def ipv4_routes(netns: str | None) -> list[ipaddress.IPv4Network]:
    """Destinations of every IPv4 route in every table (default routes left out)."""
    out = await run([*_ip(netns), "-j", "-4", "route", "show", "table", "all"], check=False)
    nets = []
    for route in json.loads(out or "[]"):
        dst = route.get("dst", "default")
        if dst != "default":
            nets.append(ipaddress.IPv4Network(dst, strict=False))
    return nets


async def set_local_addresses(netns: str | None, dev: str, wanted: set[str]) -> None:
    """Make the /32 addresses on `dev` exactly `wanted` (addresses the node answers for)."""
    have = {str(i.ip) for i in await ipv4_interfaces(netns, dev) if i.network.prefixlen == 32}
    await ip_batch(netns, [f"addr add {ip}/32 dev {dev}" for ip in sorted(wanted - have)]
                   + [f"addr del {ip}/32 dev {dev}" for ip in sorted(have - wanted)])
