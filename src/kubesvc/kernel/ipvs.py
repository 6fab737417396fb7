"""IPVS through generic netlink, with pyroute2: the only code in kubesvc that talks to IPVS.

IPVS has no text form to apply atomically, so the proxy reads the kernel's virtual and real
servers back and changes them one netlink request at a time. pyroute2 (0.9) quirks handled
here, as found on a real kernel: its "update" request is IPVS_CMD_DEL_SERVICE (so "set" is used
to change a service), its message parsing keeps class defaults for fields it does not remap
(so the raw IPVS_* attributes are read), and a real server defaults to direct routing (so
masquerading is always given).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyroute2.ipvs import AsyncIPVS, IPVSDest, IPVSService
from pyroute2.netlink.exceptions import NetlinkError

from kubesvc.kernel.netns import open_socket

NETLINK_GENERIC = 16
IP_VS_SVC_F_PERSISTENT = 0x0001
IP_VS_SVC_F_HASHED = 0x0002  # the kernel's own bookkeeping, in every service it reports
IP_VS_SVC_F_SCHED1 = 0x0008  # sh-fallback for sh, mh-fallback for mh
IP_VS_CONN_F_MASQ = 0  # "NAT" forwarding: the real server answers through this node
PROTOCOLS = {"TCP": socket.IPPROTO_TCP, "UDP": socket.IPPROTO_UDP, "SCTP": socket.IPPROTO_SCTP}
_NAMES = {number: name for name, number in PROTOCOLS.items()}


class IPVSUnavailable(OSError):
    """The kernel has no IPVS: the module ip_vs is neither loaded nor loadable."""


@dataclass(frozen=True, order=True)
class VirtualServer:
    address: str
    protocol: str  # TCP, UDP or SCTP
    port: int
    scheduler: str = "rr"
    flags: int = 0  # IP_VS_SVC_F_*
    timeout: int = 0  # persistence, in seconds (with IP_VS_SVC_F_PERSISTENT)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.address, self.protocol, self.port)

    def __str__(self) -> str:
        return f"{self.protocol}:{self.address}:{self.port}"


@dataclass(frozen=True, order=True)
class RealServer:
    address: str
    port: int
    weight: int = 1


@dataclass(frozen=True)
class RealServerStatus:
    server: RealServer
    active: int  # connections established
    inactive: int  # connections in any other state
    connections: int  # connections scheduled to it ever (the kernel updates it every 2 s)


def _unavailable(detail: str) -> IPVSUnavailable:
    return IPVSUnavailable(
        f"IPVS is not available: the kernel module ip_vs is not loaded and cannot be loaded "
        f"({detail}); this kernel needs CONFIG_IP_VS for --proxy-mode ipvs")


def _service_nla(vs: VirtualServer) -> IPVSService:
    return IPVSService(addr=vs.address, port=vs.port, protocol=PROTOCOLS[vs.protocol],
                       sched_name=vs.scheduler, timeout=vs.timeout,
                       flags={"flags": vs.flags, "mask": 0xFFFFFFFF})


def _dest_nla(rs: RealServer) -> IPVSDest:
    return IPVSDest(addr=rs.address, port=rs.port, weight=rs.weight,
                    fwd_method=IP_VS_CONN_F_MASQ)


def _attrs(message: Any, nla: str) -> dict[str, Any]:
    return dict(message.get_attr(nla)["attrs"])


class IPVS:
    """IPVS of one network namespace."""

    def __init__(self, ipvs: AsyncIPVS) -> None:
        self._ipvs = ipvs

    @classmethod
    async def open(cls, netns: str | None) -> IPVS:
        """Connect to IPVS in `netns`; IPVSUnavailable if the kernel has none."""
        sock = await open_socket(netns, socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_GENERIC)
        ipvs = AsyncIPVS(use_socket=sock)
        try:
            # Resolving the "IPVS" family makes the kernel load ip_vs if it can.
            await ipvs.setup_endpoint()
        except NetlinkError as exc:
            ipvs.close()
            sock.close()
            raise _unavailable(f"no IPVS netlink family: {os.strerror(exc.code)}") from None
        except BaseException:
            ipvs.close()
            sock.close()
            raise
        return cls(ipvs)

    def close(self) -> None:
        self._ipvs.close()

    async def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return await fn()
        except NetlinkError as exc:
            raise OSError(exc.code, f"IPVS {what}: {exc}") from None

    async def virtual_servers(self) -> list[VirtualServer]:
        found = []
        for message in await self._call("list services", lambda: self._ipvs.service("dump")):
            attrs = _attrs(message, "IPVS_CMD_ATTR_SERVICE")
            if "IPVS_SVC_ATTR_FWMARK" in attrs and "IPVS_SVC_ATTR_ADDR" not in attrs:
                continue  # firewall-mark services are not kubesvc's
            found.append(VirtualServer(
                address=str(attrs["IPVS_SVC_ATTR_ADDR"]),
                protocol=_NAMES.get(attrs["IPVS_SVC_ATTR_PROTOCOL"], "?"),
                port=int(attrs["IPVS_SVC_ATTR_PORT"]),
                scheduler=str(attrs["IPVS_SVC_ATTR_SCHED_NAME"]),
                flags=int(attrs["IPVS_SVC_ATTR_FLAGS"]["flags"]) & ~IP_VS_SVC_F_HASHED,
                timeout=int(attrs["IPVS_SVC_ATTR_TIMEOUT"])))
        return found

    async def add_virtual_server(self, vs: VirtualServer) -> None:
        try:
            await self._ipvs.service("add", service=_service_nla(vs))
        except NetlinkError as exc:
            if exc.code == 2:  # ENOENT: no such scheduler (module ip_vs_<name>)
                raise OSError(exc.code, f"IPVS add {vs}: no scheduler {vs.scheduler!r} "
                              f"(kernel module ip_vs_{vs.scheduler})") from None
            raise OSError(exc.code, f"IPVS add {vs}: {exc}") from None

    async def update_virtual_server(self, vs: VirtualServer) -> None:
        await self._call(f"set {vs}", lambda: self._ipvs.service("set", service=_service_nla(vs)))

    async def delete_virtual_server(self, vs: VirtualServer) -> None:
        await self._call(f"delete {vs}",
                         lambda: self._ipvs.service("del", service=_service_nla(vs)))

    async def real_servers(self, vs: VirtualServer) -> list[RealServerStatus]:
        messages = await self._call(
            f"list real servers of {vs}",
            lambda: self._ipvs.dest("dump", service=_service_nla(vs)))
        found = []
        for message in messages:
            attrs = _attrs(message, "IPVS_CMD_ATTR_DEST")
            stats = dict((attrs.get("IPVS_DEST_ATTR_STATS64") or {}).get("attrs", []))
            found.append(RealServerStatus(
                RealServer(str(attrs["IPVS_DEST_ATTR_ADDR"]), int(attrs["IPVS_DEST_ATTR_PORT"]),
                           int(attrs["IPVS_DEST_ATTR_WEIGHT"])),
                active=int(attrs["IPVS_DEST_ATTR_ACTIVE_CONNS"]),
                inactive=int(attrs["IPVS_DEST_ATTR_INACT_CONNS"]),
                connections=int(stats.get("IPVS_STATS_ATTR_CONNS", 0))))
        return found

    async def add_real_server(self, vs: VirtualServer, rs: RealServer) -> None:
        await self._call(f"add {rs.address}:{rs.port} to {vs}",
                         lambda: self._ipvs.dest("add", service=_service_nla(vs),
                                                 dest=_dest_nla(rs)))

    async def update_real_server(self, vs: VirtualServer, rs: RealServer) -> None:
        await self._call(f"set {rs.address}:{rs.port} of {vs}",
                         lambda: self._ipvs.dest("set", service=_service_nla(vs),
                                                 dest=_dest_nla(rs)))

    async def delete_real_server(self, vs: VirtualServer, rs: RealServer) -> None:
        await self._call(f"delete {rs.address}:{rs.port} from {vs}",
                         lambda: self._ipvs.dest("del", service=_service_nla(vs),
                                                 dest=_dest_nla(rs)))


def ipvs_loaded() -> bool:
    """Whether the ip_vs module is in the kernel (it registers /proc/net/ip_vs in every
    network namespace), found without loading it."""
    return Path("/proc/net/ip_vs").exists()


async def require_ipvs() -> None:
    """Raise IPVSUnavailable, naming the kernel module, unless IPVS can be used (loading
    ip_vs if the kernel can)."""
    (await IPVS.open(None)).close()
