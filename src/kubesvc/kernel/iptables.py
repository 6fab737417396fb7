"""iptables through iptables-restore, -save and single-rule commands (whichever backend, nft
or legacy, the host's `iptables` alternative points to)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from kubesvc.kernel import nft
from kubesvc.kernel.cmd import CommandError, run
from kubesvc.kernel.netns import in_netns_argv


async def restore(netns: str | None, payload: str) -> None:
    """Apply an iptables-restore payload without flushing the tables: chains it declares are
    flushed and refilled, all others are left alone. Atomic per table."""
    await run([*in_netns_argv(netns), "iptables-restore", "-w", "--noflush"], input=payload)


async def save(netns: str | None, table: str) -> str:
    return await run([*in_netns_argv(netns), "iptables-save", "-t", table])


async def uses_nftables(netns: str | None) -> bool:
    """Whether `iptables` is iptables-nft (it then keeps its tables as nftables tables)."""
    out = await run([*in_netns_argv(netns), "iptables", "--version"])
    return "nf_tables" in out


async def chain_names(netns: str | None, table: str) -> set[str]:
    """The names of the table's user-defined and built-in chains."""
    if await uses_nftables(netns):
        # iptables-nft-save is very slow on large tables (minutes at 10,000 services) and
        # nft can list just the chain names.
        return await nft.chain_names(netns, "ip", table)
    return set(re.findall(r"^:(\S+)", await save(netns, table), re.MULTILINE))


def _rule(netns: str | None, op: str, table: str, chain: str, args: Sequence[str]) -> list[str]:
    return [*in_netns_argv(netns), "iptables", "-w", "-t", table, op, chain, *args]


async def ensure_rule(netns: str | None, table: str, chain: str, args: Sequence[str]) -> None:
    """Insert the rule at the top of `chain` unless it is already there."""
    try:
        await run(_rule(netns, "-C", table, chain, args))
    except CommandError:
        await run(_rule(netns, "-I", table, chain, args))


async def delete_rule(netns: str | None, table: str, chain: str, args: Sequence[str]) -> None:
    """Delete every copy of the rule; nothing happens if there is none (or no such chain)."""
    while True:
        try:
            await run(_rule(netns, "-D", table, chain, args))
        except CommandError:
            return


async def delete_chains(netns: str | None, table: str, chains: Iterable[str]) -> None:
    """Flush and delete the chains in one restore (rules pointing at them must be gone)."""
    names = sorted(chains)
    if names:
        lines = [f"*{table}", *(f":{c} - [0:0]" for c in names), *(f"-X {c}" for c in names)]
        await restore(netns, "\n".join([*lines, "COMMIT", ""]))
