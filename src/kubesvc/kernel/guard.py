"""The guard table: pod traffic never leaves the node for anywhere but cluster addresses.

Pods reach each other, Services and the node; anything else they send that would be routed
out of the bridge is dropped, so a test or a misbehaving pod cannot reach the outside world.
"""

from __future__ import annotations

from kubesvc.kernel.cmd import run
from kubesvc.kernel.netns import in_netns_argv

GUARD_TABLE = "kubesvc-guard"


def render_guard(bridge: str, allowed: list[str]) -> str:
    """An nft transaction that (re)creates the guard table atomically.

    With br_netfilter, bridged pod-to-pod frames pass the forward hook too, with the bridge as
    both input and output device; only traffic leaving the bridge is filtered.
    """
    return "\n".join(
        [
            f"table inet {GUARD_TABLE}",
            f"delete table inet {GUARD_TABLE}",
            f"table inet {GUARD_TABLE} {{",
            "  set allowed {",
            "    type ipv4_addr; flags interval;",
            f"    elements = {{ {', '.join(allowed)} }}",
            "  }",
            "  chain forward {",
            "    type filter hook forward priority filter; policy accept;",
            f'    iifname "{bridge}" oifname != "{bridge}" ip daddr != @allowed counter drop',
            f'    iifname "{bridge}" oifname != "{bridge}" meta nfproto ipv6 counter drop',
            "  }",
            "}",
            "",
        ]
    )


async def apply_guard(netns: str | None, bridge: str, allowed: list[str]) -> None:
    await run([*in_netns_argv(netns), "nft", "-f", "-"], input=render_guard(bridge, allowed))


async def delete_guard(netns: str | None) -> None:
    argv = [*in_netns_argv(netns), "nft", "delete", "table", "inet", GUARD_TABLE]
    await run(argv, check=False)
