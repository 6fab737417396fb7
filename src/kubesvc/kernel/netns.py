"""Named network namespaces (the `ip netns` kind, bind-mounted under /run/netns).

Everything else in kubesvc names a namespace by its `ip netns` name, or None for the namespace
the calling process lives in.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from kubesvc.kernel.cmd import run

NETNS_DIR = Path("/run/netns")

CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def netns_exists(name: str) -> bool:
    return netns_path(name).exists()


def list_netns(prefix: str = "") -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))


async def add_netns(name: str) -> None:
    """Create the namespace unless it exists, with its loopback up (nothing works without)."""
    if not netns_exists(name):
        await run(["ip", "netns", "add", name])
    await run(["ip", "-n", name, "link", "set", "lo", "up"])


async def delete_netns(name: str) -> None:
    if netns_exists(name):
        await run(["ip", "netns", "delete", name])


def in_netns_argv(netns: str | None) -> list[str]:
    """The prefix that runs a command inside `netns` (empty for the current namespace).

    nsenter rather than `ip netns exec`: the latter also remounts /sys and overlays /etc/netns,
    which costs time and changes what the command sees.
    """
    return [] if netns is None else ["nsenter", f"--net={netns_path(netns)}", "--"]


def setns(path: Path, nstype: int) -> None:
    """Move the calling thread into the namespace bind-mounted (or /proc-linked) at `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, nstype) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def unshare(flags: int) -> None:
    """Give the calling process new namespaces of the kinds in `flags`."""
    if _libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")


async def _in_netns_thread(netns: str, fn: Callable[[], T]) -> T:
    """Run `fn` in a throw-away thread that has joined `netns`.

    setns() only moves the calling thread. A fresh thread keeps the event loop and executor
    threads in their own namespace, and it ends right after, so it never pins the namespace
    (a thread left inside would keep a deleted namespace, and its links, alive).
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def deliver(result: T | None, exc: BaseException | None) -> None:
        if fut.cancelled():
            if isinstance(result, socket.socket):
                result.close()
        elif exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            setns(netns_path(netns), CLONE_NEWNET)
            result = fn()
        except BaseException as exc:  # handed to the awaiting task
            loop.call_soon_threadsafe(deliver, None, exc)
        else:
            loop.call_soon_threadsafe(deliver, result, None)

    threading.Thread(target=work, name=f"netns-{netns}", daemon=True).start()
    return await fut


async def open_socket(
    netns: str | None, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
    proto: int = 0,
) -> socket.socket:
    """A non-blocking socket that lives in `netns`: connecting from it reaches that namespace's
    addresses, as probes and hooks must (the socket keeps its namespace for its whole life)."""

    def make() -> socket.socket:
        sock = socket.socket(family, type, proto)
        sock.setblocking(False)
        return sock

    return make() if netns is None else await _in_netns_thread(netns, make)
