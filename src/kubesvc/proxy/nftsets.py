"""Set and map elements of an nftables table, as `nft -f` commands.

userspace and ipvs modes keep their per-Service state in a table's sets and maps only (their
chains never change), so a full sync writes every element and a partial one the difference.
"""

from __future__ import annotations

from collections.abc import Mapping

ELEMENTS_PER_COMMAND = 1000

Element = tuple[str, str]  # (set or map, key); a map's value is kept alongside


def element_commands(table: str, verb: str, elements: Mapping[Element, str]) -> list[str]:
    """`add|delete element` commands for `table` ("family name"), batched per set."""
    by_set: dict[str, list[str]] = {}
    for (name, key), value in sorted(elements.items()):
        by_set.setdefault(name, []).append(f"{key} : {value}" if value and verb == "add" else key)
    commands = []
    for name, items in sorted(by_set.items()):
        for i in range(0, len(items), ELEMENTS_PER_COMMAND):
            batch = ", ".join(items[i:i + ELEMENTS_PER_COMMAND])
            commands.append(f"{verb} element {table} {name} {{ {batch} }}")
    return commands


def element_changes(table: str, before: Mapping[Element, str],
                    after: Mapping[Element, str]) -> str:
    """A transaction moving `table`'s elements from `before` to `after` ("" if none)."""
    removed = {k: v for k, v in before.items() if after.get(k) != v}
    added = {k: v for k, v in after.items() if before.get(k) != v}
    lines = element_commands(table, "delete", removed) + element_commands(table, "add", added)
    return "\n".join(lines) + "\n" if lines else ""
