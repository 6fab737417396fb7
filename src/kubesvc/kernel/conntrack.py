"""Listing and deleting conntrack entries, through conntrack-tools.

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
# `conntrack -L` prints an entry a line, its original tuple then its reply tuple:
#   udp      17 29 src=10.244.0.4 dst=10.96.0.10 sport=40000 dport=53 [UNREPLIED]
#   src=10.244.0.2 dst=10.244.0.4 sport=53 dport=40000 mark=0 use=1
_TUPLE = r"src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)"
_ENTRY = re.compile(rf"^(\w+) .*?{_TUPLE} .*?{_TUPLE}", re.MULTILINE)


@dataclass(frozen=True)
class Entry:
    """A conntrack entry, as far as the proxy looks at it: where its first packet was sent
    and where the replies come from, which is elsewhere once it was DNAT-ed."""

    protocol: str
    orig_dst: str
    orig_port_dst: int
    reply_src: str
    reply_port_src: int

    @property
    def dnat(self) -> bool:
        return (self.reply_src, self.reply_port_src) != (self.orig_dst, self.orig_port_dst)


@dataclass(frozen=True)
class FlowFilter:
    """Entries of one protocol sent to `orig_dst`, to port `orig_port_dst` or to both,
    narrowed to those DNAT-ed to `dst_nat`, or to those answered from `reply_src`
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


def parse_entries(listing: str) -> list[Entry]:
    """The entries of a `conntrack -L` listing."""
    return [Entry(m[1], m[3], int(m[5]), m[6], int(m[8])) for m in _ENTRY.finditer(listing)]


async def list_entries(netns: str | None, protocol: str) -> list[Entry]:
    """The IPv4 entries of one protocol (conntrack's own default family)."""
    return parse_entries(await run([*in_netns_argv(netns), "conntrack", "-L", "-p", protocol]))


async def delete_flows(netns: str | None, filters: Iterable[FlowFilter]) -> None:
    """Delete the entries matching each filter."""
    for flt in filters:
        try:
            await run([*in_netns_argv(netns), "conntrack", "-D", *flt.argv()])
        except CommandError as exc:
            # conntrack exits 1 when nothing matched, saying "0 flow entries have been deleted".
            if not _NONE_DELETED.search(exc.stderr):
                raise
