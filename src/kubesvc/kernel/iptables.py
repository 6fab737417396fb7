"""iptables through iptables-restore, -save and single-rule commands.

`backend` names the command family, "iptables-legacy" or "iptables-nft" ("iptables" is
whichever the host's alternative points to; Debian's default is iptables-nft). The kernel runs
both families' tables side by side. They differ a lot at scale. With 10 endpoints per service,
one `restore --noflush` of every chain took, with iptables-nft 1.8.9, 2.3 s for 500 services,
11 s for 1,000 and 64 s for 2,000 (quadratic in the number of chains); with legacy 1 s for
2,000 and 54 s for 10,000, and legacy rewrites the whole table for every change. So legacy is
the default.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from kubesvc.kernel import nft
from kubesvc.kernel.cmd import CommandError, run
from kubesvc.kernel.netns import in_netns_argv

DEFAULT_BACKEND = "iptables-legacy"
BACKENDS = ("iptables-legacy", "iptables-nft")


async def restore(netns: str | None, payload: str, backend: str = DEFAULT_BACKEND) -> None:
    """Apply an iptables-restore payload without flushing the tables: chains it declares are
    flushed and refilled, all others are left alone. Atomic per table."""
    await run([*in_netns_argv(netns), f"{backend}-restore", "-w", "--noflush"], input=payload)


async def save(netns: str | None, table: str, backend: str = DEFAULT_BACKEND) -> str:
    return await run([*in_netns_argv(netns), f"{backend}-save", "-t", table])


async def uses_nftables(netns: str | None, backend: str = DEFAULT_BACKEND) -> bool:
    """Whether `backend` is iptables-nft (which keeps its tables as nftables tables)."""
    out = await run([*in_netns_argv(netns), backend, "--version"])
    return "nf_tables" in out


async def chain_names(netns: str | None, table: str, backend: str = DEFAULT_BACKEND) -> set[str]:
    """The names of the table's user-defined and built-in chains (none if it does not exist)."""
    if await uses_nftables(netns, backend):
        # iptables-nft-save is very slow on large tables (minutes at 10,000 services) and
        # nft can list just the chain names.
        return await nft.chain_names(netns, "ip", table)
    # Listing a legacy table creates it, and from then on iptables-nft warns on every save
    # that legacy tables are present: so a table the kernel does not list is not listed.
    if table not in await _legacy_tables(netns):
        return set()
    return set(re.findall(r"^:(\S+)", await save(netns, table, backend), re.MULTILINE))


async def _legacy_tables(netns: str | None) -> set[str]:
    """The legacy tables that exist in `netns` (none if the kernel has no legacy iptables)."""
    try:
        names = await run([*in_netns_argv(netns), "cat", "/proc/net/ip_tables_names"])
    except CommandError as exc:
        if "No such file or directory" in exc.stderr:
            return set()
        raise
    return set(names.split())


def _rule(netns: str | None, backend: str, op: str, table: str, chain: str,
          args: Sequence[str]) -> list[str]:
    return [*in_netns_argv(netns), backend, "-w", "-t", table, op, chain, *args]


async def ensure_rule(netns: str | None, table: str, chain: str, args: Sequence[str],
                      backend: str = DEFAULT_BACKEND) -> None:
    """Insert the rule at the top of `chain` unless it is already there."""
    try:
        await run(_rule(netns, backend, "-C", table, chain, args))
    except CommandError:
        await run(_rule(netns, backend, "-I", table, chain, args))


async def delete_rule(netns: str | None, table: str, chain: str, args: Sequence[str],
                      backend: str = DEFAULT_BACKEND) -> None:
    """Delete every copy of the rule; nothing happens if there is none (or no such chain)."""
    while True:
        try:
            await run(_rule(netns, backend, "-D", table, chain, args))
        except CommandError:
            return


async def delete_chains(netns: str | None, table: str, chains: Iterable[str],
                        backend: str = DEFAULT_BACKEND) -> None:
    """Flush and delete the chains in one restore (rules pointing at them must be gone)."""
    names = sorted(chains)
    if names:
        lines = [f"*{table}", *(f":{c} - [0:0]" for c in names), *(f"-X {c}" for c in names)]
        await restore(netns, "\n".join([*lines, "COMMIT", ""]), backend)
