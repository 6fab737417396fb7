"""The kernel side of each mode: apply a rendered plan, remember what is programmed, clean up.

Rendering lives in nftables.py and iptables.py and is pure; these classes are the small step
that hands the text to the kernel package and commits the plan once it applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

from kubesvc.kernel import iptables as ipt
from kubesvc.kernel import nft, nftnl
from kubesvc.proxy import iptables, ipvs, nftables, userspace
from kubesvc.proxy.schedulers import DEFAULT_SCHEDULER, DEFAULT_WEIGHT
from kubesvc.proxy.tracker import SnapshotUpdate
from kubesvc.proxy.types import NodeConfig

MODES = ("nftables", "iptables", "ipvs", "userspace")
# The modes that run schedulers, and so use the pods' weights.
SCHEDULED_MODES = ("ipvs", "userspace")


def _unsupported(mode: str) -> ValueError:
    return ValueError(f"unsupported proxy mode {mode!r} (supported: {', '.join(MODES)})")


class Dataplane(Protocol):
    mode: str

    async def sync(self, update: SnapshotUpdate, full: bool) -> None:
        """Program `update.current`: everything if `full`, else only `update.changed`."""

    def counts(self) -> dict[str, int]:
        """How much is programmed (rules, chains, elements, per the mode's own terms)."""

    async def close(self) -> None:
        """Let go of what the mode holds besides the kernel's state (userspace mode: its
        relay workers, and so its connections); programmed rules stay."""


class NFTablesDataplane:
    mode = "nftables"

    def __init__(self, node: NodeConfig, netns: str | None) -> None:
        self.netns = netns
        self.ruleset = nftables.Ruleset(node)

    async def sync(self, update: SnapshotUpdate, full: bool) -> None:
        if full:
            existing = await nft.table_names(self.netns, nftables.FAMILY)
            plan = self.ruleset.plan_full(update.current, existing)
        else:
            plan = self.ruleset.plan_partial(update.current, update.changed)
        batch = nftables.netlink_batch(plan.in_place) if plan.in_place else None
        if batch is not None:
            await nftnl.apply(self.netns, batch)
        elif plan.text:
            await nft.apply(self.netns, plan.text)
        self.ruleset.commit(plan)

    def counts(self) -> dict[str, int]:
        return self.ruleset.counts()

    async def close(self) -> None:
        """Nothing to let go of: the rules are the whole data plane."""


class IPTablesDataplane:
    mode = "iptables"

    def __init__(self, node: NodeConfig, netns: str | None,
                 backend: str = ipt.DEFAULT_BACKEND) -> None:
        self.netns = netns
        self.backend = backend
        self.ruleset = iptables.Ruleset(node)

    async def sync(self, update: SnapshotUpdate, full: bool) -> None:
        if full:
            existing = await ipt.chain_names(self.netns, "nat", self.backend)
            plan = self.ruleset.plan_full(update.current, existing)
        else:
            plan = self.ruleset.plan_partial(update.current, update.changed)
        await ipt.restore(self.netns, plan.text, self.backend)
        if full:
            for jump in iptables.JUMP_RULES:
                await ipt.ensure_rule(self.netns, jump.table, jump.chain, jump.args(),
                                      self.backend)
        self.ruleset.commit(plan)

    def counts(self) -> dict[str, int]:
        return self.ruleset.counts()

    async def close(self) -> None:
        """Nothing to let go of: the rules are the whole data plane."""


def new_dataplane(mode: str, node: NodeConfig, netns: str | None, *,
                  iptables_backend: str = ipt.DEFAULT_BACKEND,
                  scheduler: str = DEFAULT_SCHEDULER,
                  weights: Callable[[str], int] = lambda ip: DEFAULT_WEIGHT) -> Dataplane:
    if mode == "nftables":
        return NFTablesDataplane(node, netns)
    if mode == "iptables":
        return IPTablesDataplane(node, netns, iptables_backend)
    if mode == "ipvs":
        return ipvs.IPVSDataplane(node, netns, scheduler=scheduler, weights=weights)
    if mode == "userspace":
        return userspace.UserspaceDataplane(node, netns, scheduler=scheduler, weights=weights)
    raise _unsupported(mode)


async def _nft_tables(netns: str | None) -> list[str]:
    """kubesvc's tables: the main one and its shards."""
    return sorted(t for t in await nft.table_names(netns, nftables.FAMILY)
                  if t == nftables.TABLE or nftables.SHARD_TABLE_RE.fullmatch(t))


async def _cleanup_iptables(netns: str | None, backend: str) -> None:
    for table, own in (("nat", iptables.NAT_CHAINS), ("filter", iptables.FILTER_CHAINS)):
        existing = await ipt.chain_names(netns, table, backend)
        ours = {c for c in existing if c in own or iptables.is_service_chain(c)}
        if not ours:
            continue  # don't create the table (or touch its built-in chains) for nothing
        for jump in iptables.JUMP_RULES:
            if jump.table == table:
                await ipt.delete_rule(netns, table, jump.chain, jump.args(), backend)
        await ipt.delete_chains(netns, table, ours, backend)


async def cleanup(mode: str, netns: str | None, *,
                  iptables_backend: str = ipt.DEFAULT_BACKEND) -> None:
    """Remove every rule `mode` made in `netns`; harmless if there is none."""
    if mode == "nftables":
        await nft.delete_tables(netns, nftables.FAMILY, await _nft_tables(netns))
    elif mode == "iptables":
        await _cleanup_iptables(netns, iptables_backend)
    elif mode == "ipvs":
        await ipvs.cleanup(netns)
    elif mode == "userspace":
        await userspace.cleanup(netns)
    else:
        raise _unsupported(mode)


_IPTABLES_OURS = re.compile(r"^(\*|COMMIT$|:KUBE-|-A KUBE-|-A .* -j KUBE-)")


async def programmed_rules(mode: str, netns: str | None, *,
                           iptables_backend: str = ipt.DEFAULT_BACKEND) -> str:
    """What `mode` has programmed in `netns`, as the kernel reports it."""
    if mode == "nftables":
        return await nft.list_tables(netns, nftables.FAMILY, set(await _nft_tables(netns)))
    if mode == "ipvs":
        return await ipvs.programmed_rules(netns)
    if mode == "userspace":
        return await userspace.programmed_rules(netns)
    if mode == "iptables":
        lines = []
        for table in ("filter", "nat"):
            dump = await ipt.save(netns, table, iptables_backend)
            lines += [line for line in dump.splitlines() if _IPTABLES_OURS.match(line)]
        return "\n".join(lines) + "\n"
    raise _unsupported(mode)
