"""nftables through the `nft` CLI: atomic transactions in, listings out.

The CLI rather than netlink keeps the rules in the syntax nft's documentation uses, and a
transaction is one `nft -f -` run: it applies completely or not at all.
"""

from __future__ import annotations

import json

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


async def delete_table(netns: str | None, family: str, table: str) -> None:
    """Delete the table and everything in it; nothing happens if it does not exist."""
    # `add` first makes the delete valid when the table is missing, in the same transaction.
    await apply(netns, f"add table {family} {table}\ndelete table {family} {table}\n")


async def chain_names(netns: str | None, family: str, table: str) -> set[str]:
    """The names of the table's chains (empty if the table does not exist).

    `list chains` only dumps chain headers, so it stays fast where listing the table would
    print hundreds of thousands of rules.
    """
    out = await run([*in_netns_argv(netns), "nft", "-j", "list", "chains", family])
    return {
        obj["chain"]["name"]
        for obj in json.loads(out or "{}").get("nftables", [])
        if "chain" in obj and obj["chain"]["table"] == table
    }
