"""Deleting conntrack entries, through conntrack-tools.

Connections are NATed once, when their conntrack entry is created; a UDP "connection" whose
endpoint went away keeps going to it until the entry expires, so the proxy deletes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from kubesvc.kernel.cmd import CommandError, run
from kubesvc.kernel.netns import in_netns_argv

_NONE_DELETED = re.compile(r"\b0 flow entries have been deleted")


@dataclass(frozen=True)
class FlowFilter:
    """Entries of one protocol sent to `orig_dst` (or to local port `orig_port_dst`), narrowed
    to those DNAT-ed to `dst_nat`, or to those answered from `reply_src`
    (`reply_port_src`): the original destination itself, so not DNAT-ed at all."""

    protocol: str
    orig_dst: str | None = None
    orig_port_dst: int | None = None
    dst_nat: str | None = None
    reply_src: str | None = None
    reply_port_src: int | None = None

    def argv(self) -> list[str]:
        options = (("--orig-dst", self.orig_dst), ("--orig-port-dst", self.orig_port_dst),
                   ("--dst-nat", self.dst_nat), ("--reply-src", self.reply_src),
                   ("--reply-port-src", self.reply_port_src))
        return ["-p", self.protocol,
                *(arg for name, value in options if value is not None
                  for arg in (name, str(value)))]


async def delete_flows(netns: str | None, filters: Iterable[FlowFilter]) -> None:
    """Delete the entries matching each filter."""
    for flt in filters:
        try:
            await run([*in_netns_argv(netns), "conntrack", "-D", *flt.argv()])
        except CommandError as exc:
            # conntrack exits 1 when nothing matched, saying "0 flow entries have been deleted".
            if not _NONE_DELETED.search(exc.stderr):
                raise
