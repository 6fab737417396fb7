"""Processes in a pod's namespaces: starting a container, entering one, the pod's own namespaces.

A pod's supervisor (kubesvc.node.shim) joins the pod's network namespace and makes the pod's
UTS and IPC namespaces for itself; each container it starts then gets its own PID and mount
namespaces, where the pod's resolv.conf/hosts/hostname files are bind-mounted over /etc.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from kubesvc.kernel.netns import (
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWUTS,
    netns_path,
    setns,
    unshare,
)

HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Runs as the container's PID 1 before the program: bind mounts, working directory, then exec.
# Exit codes follow runc, which reports 128 for a container that could not be set up.
_INIT = """\
mount=$1; shift
while [ "$1" != -- ]; do "$mount" --bind "$1" "$2" || exit 128; shift 2; done
shift
cd "$1" || exit 128
shift
exec "$@"
"""


def _tool(name: str) -> str:
    """A host tool by absolute path: the argv is run with the container's PATH, which finds
    busybox's applets (unshare, mount, env, ...) first."""
    return shutil.which(name, path=HOST_PATH) or name


def enter_pod_namespaces(netns: str | None, hostname: str | None) -> None:
    """Move the calling, still single-threaded, process into the pod's namespaces.

    `netns` None keeps the current network namespace (a hostNetwork pod on a host node);
    `hostname` None keeps the current UTS namespace too.
    """
    if netns is not None:
        setns(netns_path(netns), CLONE_NEWNET)
    if hostname is not None:
        unshare(CLONE_NEWUTS | CLONE_NEWIPC)
        socket.sethostname(hostname)


def container_argv(argv: list[str], cwd: str, mounts: list[tuple[str, str]]) -> list[str]:
    """An argv that runs `argv` as PID 1 of new PID and mount namespaces.

    busybox's unshare rather than util-linux's: 2.38's loses a child's death by signal (exit 1
    with "sigprocmask unblock failed" instead of dying by the same signal), and the runtime
    must report a SIGKILLed container as exit code 137. The whole tree dies with its parent:
    the outer setpriv's parent-death signal kills the launcher if the supervisor dies, and the
    inner one kills the container if the launcher dies.
    """
    binds = [path for pair in mounts for path in pair]
    setpriv = [_tool("setpriv"), "--pdeathsig", "KILL", "--"]
    return [
        *setpriv, _tool("busybox"), "unshare", "--fork", "--pid", "--mount-proc",
        "--propagation", "private", "--", *setpriv, "/bin/sh", "-c", _INIT, "kubesvc-init",
        _tool("mount"), *binds, "--", cwd, *argv,
    ]  # fmt: skip


def container_pid(launcher_pid: int) -> int | None:
    """The host PID of the container's PID 1: the forked child of the unshare launcher."""
    try:
        children = Path(f"/proc/{launcher_pid}/task/{launcher_pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def exec_argv(pid: int, argv: list[str], env: list[tuple[str, str]], cwd: str) -> list[str]:
    """An argv that runs `argv` inside all namespaces of process `pid`, with exactly `env`."""
    return [
        _tool("nsenter"), "-t", str(pid), "--mount", "--uts", "--ipc", "--net", "--pid",
        f"--wd={cwd}", "--", _tool("env"), "-i", *(f"{name}={value}" for name, value in env),
        *argv,
    ]  # fmt: skip
