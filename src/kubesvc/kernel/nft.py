"""nftables through the `nft` CLI: atomic transactions in, listings out.

The CLI rather than netlink keeps the rules in the syntax nft's documentation uses, and a
transaction is one `nft -f -` run: it applies completely or not at all.
"""

from __future__ import annotations

import json
import re

from kubesvc.kernel.cmd import CommandError, run
from kubesvc.kernel.netns import in_netns_argv


async def apply(netns: str | None, transaction: str) -> None:
    """Run `transaction` (nft -f syntax) atomically in `netns`."""
    await run([*in_netns_argv(netns), "nft", "-f", "-"], input=transaction)


async def list_table(netns: str | None, family: str, table: str) -> str | None:
    """The table as nft prints it, or None if it does not exist."""
    try:
        return await run([*in_netns_argv(netns), "nft", "list", "table", family, table])
    except CommandError as exc:
        if "No such file or directory" in exc.stderr:
            return None
        raise


async def list_tables(netns: str | None, family: str, tables: set[str]) -> str:
    """The given tables as nft prints them, from one listing of the family (each `nft list`
    reads the whole ruleset, so listing tables one by one costs that many times over)."""
    out = await run([*in_netns_argv(netns), "nft", "list", "ruleset", family])
    blocks = re.split(r"(?m)^(?=table )", out)
    wanted = {f"table {family} {t} {{" for t in tables}
    return "".join(b for b in blocks if b.split("\n", 1)[0].strip() in wanted)


async def delete_table(netns: str | None, family: str, table: str) -> None:
    """Delete the table and everything in it; nothing happens if it does not exist."""
    await delete_tables(netns, family, [table])


async def delete_tables(netns: str | None, family: str, tables: list[str]) -> None:
    """Delete the tables and everything in them, in one transaction; tables that do not
    exist are skipped."""
    # `add` first makes the delete valid when the table is missing, in the same transaction.
    commands = [f"{verb} table {family} {table}" for table in tables for verb in ("add", "delete")]
    if commands:
        await apply(netns, "\n".join(commands) + "\n")


async def table_names(netns: str | None, family: str) -> set[str]:
    """The names of the family's tables that hold chains.

    Read from `list chains`: nft 1.0.6 reads the whole ruleset, rules included, for
    `list tables`, which takes half a minute at 10,000 services.
    """
    return {table for table, _ in await _chains(netns, family)}


async def _chains(netns: str | None, family: str) -> list[tuple[str, str]]:
    """(table, chain) for every chain of the family; `list chains` only dumps chain headers,
    so it stays fast where listing a table would print hundreds of thousands of rules."""
    out = await run([*in_netns_argv(netns), "nft", "-j", "list", "chains", family])
    return [(obj["chain"]["table"], obj["chain"]["name"])
            for obj in json.loads(out or "{}").get("nftables", []) if "chain" in obj]


async def chain_names(netns: str | None, family: str, table: str) -> set[str]:
    """The names of the table's chains (empty if the table does not exist)."""
    return {chain for t, chain in await _chains(netns, family) if t == table}
