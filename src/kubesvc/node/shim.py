"""The per-pod supervisor ("shim"): runs a pod's containers and outlives the agent.

    python -m kubesvc.node.shim [--daemon] <pod-dir>

It reads the pod's ShimConfig, joins the pod's network namespace, makes the pod's UTS and IPC
namespaces, and runs each container (PID 1 of its own PID and mount namespaces) with the
restart policy and back-off of the kubelet. Container output goes to CRI log files, states to
`status.json`. The agent talks to it over a unix socket in the pod directory, one JSON request
per line: {"op": "restart", "container": NAME, "grace": S}, {"op": "stop", "grace": S},
{"op": "status"}; each answered by {"ok": true} or {"ok": false, "error": ...}.

With --daemon it detaches (new session, reparented away from the agent) and returns once it is
serving, so killing or restarting the agent leaves pods running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubesvc.kernel.container import container_argv, container_pid, enter_pod_namespaces, exec_argv
from kubesvc.node.logs import LogWriter
from kubesvc.node.podfiles import (
    ContainerConfig,
    ContainerStatus,
    PodDir,
    ShimConfig,
    ShimStatus,
    read_json,
    write_json,
)
from kubesvc.node.probes import ProbeTarget, run_action
from kubesvc.node.sandbox import map_program

BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
MIN_GRACE = 2.0  # the kubelet never gives a container less to stop
_HANDLERS = ("exec", "httpGet", "tcpSocket", "sleep")


def rfc3339(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def go_duration(seconds: float) -> str:
    """A duration as Go prints it in the kubelet's messages: 10s, 1m20s, 5m0s."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@contextlib.contextmanager
def socket_path(path: Path) -> Iterator[str]:
    """`path` as a unix socket address short enough for sun_path (108 bytes), however deep the
    state directory: through /proc/self/fd of its directory."""
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


class Backoff:
    """The kubelet's crash-loop back-off for one container (client-go flowcontrol.Backoff).

    Times are wall-clock seconds. The first restart is immediate; later ones wait 10s after the
    container finished, doubling up to 5m; a container that ran for 10 minutes (twice the
    maximum) since the last restart starts over.
    """

    def __init__(self, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX) -> None:
        self.initial = initial
        self.maximum = maximum
        self.duration = 0.0
        self.last_update: float | None = None

    def _expired(self, event: float) -> bool:
        return self.last_update is None or event - self.last_update > 2 * self.maximum

    def remaining(self, finished: float, now: float) -> float:
        """How long a container that finished at `finished` must still wait to restart."""
        if self._expired(finished):
            return 0.0
        return max(0.0, finished + self.duration - now)

    def next(self, finished: float, now: float) -> None:
        """Record a restart."""
        if self._expired(finished):
            self.duration = self.initial
        else:
            self.duration = min(self.duration * 2, self.maximum)
        self.last_update = now


def exit_code(returncode: int) -> int:
    """A process's exit code as the container runtime reports it (128+N for signal N)."""
    return 128 - returncode if returncode < 0 else returncode


def start_error(cfg: ContainerConfig) -> str | None:
    """Why the container cannot start at all (runc's StartError), checked before starting."""
    if not cfg.argv:
        return "no command specified"
    program = cfg.argv[0]
    path = dict(cfg.env).get("PATH", "")
    if "/" in program:
        target = program if program.startswith("/") else os.path.join(cfg.cwd, program)
        found = os.access(target, os.X_OK)
    else:
        found = shutil.which(program, path=path) is not None
    if not found:
        return f'exec: "{program}": executable file not found in $PATH'
    if not os.path.isdir(cfg.cwd):
        return f"chdir to cwd ({cfg.cwd!r}) set in config.json failed: no such file or directory"
    return None


class ContainerRunner:
    """One container of the pod: starts instances, keeps its status and logs, restarts it."""

    def __init__(self, shim: Shim, cfg: ContainerConfig, status: ContainerStatus) -> None:
        self.shim = shim
        self.cfg = cfg
        self.status = status
        self.backoff = Backoff()
        self.proc: asyncio.subprocess.Process | None = None
        self._wake = asyncio.Event()
        self._restart_requested = False
        self._exited = asyncio.Event()

    @property
    def target(self) -> ProbeTarget:
        """Hooks run from the shim, which is in the pod's network namespace already."""
        return ProbeTarget(self.shim.config.pod_ip, None, self.cfg.ports, self.exec_argv)

    def exec_argv(self, argv: list[str]) -> list[str]:
        if self.status.pid is None:
            raise LookupError(f"container {self.cfg.name!r} is not running")
        if argv:
            argv = [map_program(argv[0], self.shim.dir.bin), *argv[1:]]
        return exec_argv(self.status.pid, argv, self.cfg.env, self.cfg.cwd)

    async def supervise(self, restart_policy: str, init: bool) -> bool:
        """Run instances until the policy says stop; True if the last one succeeded."""
        if self.cfg.image_error is not None:
            await self._image_error()
            return False
        while not self.shim.stopping:
            ended = self.status.terminated
            if ended is not None:  # an instance ended (maybe under an earlier shim): restart?
                code = int(ended.get("exitCode", 0))
                restarting, self._restart_requested = self._restart_requested, False
                if (
                    restart_policy == "Never"
                    or (restart_policy == "OnFailure" and code == 0 and not restarting)
                    or (init and code == 0)
                ):
                    return code == 0
                await self._back_off()
                if self.shim.stopping:
                    break
                self.status.restart_count += 1
            await self._run_instance()
        ended = self.status.terminated
        return ended is not None and ended.get("exitCode") == 0

    async def _back_off(self) -> None:
        finished = time.time()
        wait = self.backoff.remaining(finished, finished)
        if wait > 0:
            previous = self.status.state
            self.status.state = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {go_duration(self.backoff.duration)} restarting "
                    f"failed container={self.cfg.name} pod={self.shim.pod_ref}",
                }
            }
            self.status.last_state = previous
            self.shim.save()
            await self._sleep(wait)
            self.status.state = previous  # the instance that ended is still the last one
        self.backoff.next(finished, time.time())

    async def _image_error(self) -> None:
        reason, message = self.cfg.image_error or ("ErrImagePull", "")
        self.status.state = {"waiting": {"reason": reason, "message": message}}
        self.shim.save()
        if reason == "ErrImagePull":
            await self._sleep(BACKOFF_INITIAL)
            if self.shim.stopping:
                return
            self.status.state = {
                "waiting": {
                    "reason": "ImagePullBackOff",
                    "message": f'Back-off pulling image "{self.cfg.image}"',
                }
            }
            self.shim.save()
        await self._sleep(None)

    async def _sleep(self, seconds: float | None) -> None:
        """Sleep, cut short by wake() (the pod stops, or a restart is asked for)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    def _terminated(self, code: int, reason: str, started: str, message: str = "") -> None:
        state: dict[str, Any] = {
            "exitCode": code,
            "reason": reason,
            "startedAt": started,
            "finishedAt": rfc3339(),
            "containerID": self.status.container_id,
        }
        if message:
            state["message"] = message
        self.status.state = {"terminated": state}
        self.status.pid = None

    async def _run_instance(self) -> int:
        """Start one instance and wait for it to end; its exit code."""
        ended = self.status.terminated
        if ended is not None:
            self.status.last_state = {"terminated": ended}
        self.status.container_id = f"kubesvc://{secrets.token_hex(32)}"
        self._exited.clear()
        started = rfc3339()
        problem = start_error(self.cfg)
        if problem is not None:
            self._terminated(128, "StartError", started, problem)
            self.shim.save()
            self._exited.set()
            return 128
        log = self.shim.dir.log_path(self.cfg.name, self.status.restart_count)
        stale = self.shim.dir.log_path(self.cfg.name, self.status.restart_count - 2)
        stale.unlink(missing_ok=True)  # the kubelet keeps the current and previous instance
        writer = LogWriter(log)
        self.proc = await asyncio.create_subprocess_exec(
            *container_argv(self.cfg.argv, self.cfg.cwd, self.shim.config.mounts),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(self.cfg.env),
        )
        pumps = [
            asyncio.create_task(self._pump(self.proc.stdout, "stdout", writer)),
            asyncio.create_task(self._pump(self.proc.stderr, "stderr", writer)),
        ]
        pid = None
        for _ in range(200):
            pid = container_pid(self.proc.pid)
            if pid is not None or self.proc.returncode is not None:
                break
            await asyncio.sleep(0.005)
        self.status.pid = pid
        self.status.state = {"running": {"startedAt": started}}
        self.shim.save()
        if self.shim.stopping:  # stop() came while this instance was being started
            self._signal(pid or self.proc.pid, signal.SIGKILL)
        post_start = self.cfg.lifecycle.get("postStart")
        hook = None
        if isinstance(post_start, dict) and pid is not None:
            hook = asyncio.create_task(self._post_start(post_start))
        returncode = await self.proc.wait()
        if hook is not None:
            hook.cancel()
        await asyncio.wait(pumps, timeout=2)
        writer.close()
        code = exit_code(returncode)
        self._terminated(code, "Completed" if code == 0 else "Error", started)
        self.proc = None
        self.shim.save()
        self._exited.set()
        return code

    @staticmethod
    async def _pump(stream: asyncio.StreamReader | None, name: str, writer: LogWriter) -> None:
        assert stream is not None
        while chunk := await stream.read(65536):
            writer.write(name, chunk)

    async def _post_start(self, handler: dict[str, Any]) -> None:
        ok, message = await self._run_handler(handler, None)
        if not ok:
            print(f"postStart hook of {self.cfg.name} failed: {message}", flush=True)
            await self.kill(self.shim.config.grace_seconds, pre_stop=False)

    async def _run_handler(
        self, handler: dict[str, Any], timeout: float | None
    ) -> tuple[bool, str]:
        kind = next((k for k in _HANDLERS if isinstance(handler.get(k), dict)), None)
        if kind is None:
            return False, "lifecycle handler has no action"
        return await run_action(kind, handler[kind], self.target, timeout or 1e9)

    async def kill(self, grace: float, pre_stop: bool = True) -> None:
        """Stop the running instance as the kubelet does: preStop hook, SIGTERM, SIGKILL."""
        proc, pid = self.proc, self.status.pid
        if proc is None:
            return
        loop = asyncio.get_running_loop()
        began = loop.time()
        hook = self.cfg.lifecycle.get("preStop")
        if pre_stop and isinstance(hook, dict):
            ok, message = await self._run_handler(hook, max(grace, MIN_GRACE))
            if not ok:
                print(f"preStop hook of {self.cfg.name} failed: {message}", flush=True)
        remaining = max(grace - (loop.time() - began), MIN_GRACE)
        self._signal(pid or proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self._exited.wait()), remaining)
        except TimeoutError:
            self._signal(pid or proc.pid, signal.SIGKILL)
            await self._exited.wait()

    async def restart(self, grace: float) -> None:
        if self.proc is None:
            self.wake()  # waiting in back-off: the next instance may as well start now
            return
        self._restart_requested = True
        await self.kill(grace)

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


class Shim:
    def __init__(self, pod_dir: PodDir, config: ShimConfig) -> None:
        self.dir = pod_dir
        self.config = config
        self.stopping = False
        self.pod_ref = f"{config.name}_{config.namespace}({config.uid})"
        previous = self._previous_status()
        self.status = ShimStatus(shim_pid=os.getpid())
        self.init_runners = [self._runner(c, previous) for c in config.init_containers]
        self.runners = [self._runner(c, previous) for c in config.containers]
        self.status.init_containers = [r.status for r in self.init_runners]
        self.status.containers = [r.status for r in self.runners]
        self.done = asyncio.Event()

    def _previous_status(self) -> ShimStatus | None:
        """What an earlier shim of this pod recorded: restart counts go on from there."""
        try:
            return ShimStatus.from_dict(read_json(self.dir.status))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def _runner(self, cfg: ContainerConfig, previous: ShimStatus | None) -> ContainerRunner:
        status = ContainerStatus(cfg.name, cfg.image, cfg.image_id)
        if self.config.init_containers and any(cfg is c for c in self.config.containers):
            status.state = {"waiting": {"reason": "PodInitializing"}}
        old = previous.container(cfg.name) if previous is not None else None
        if old is not None and old.container_id:
            # Carry on from the last instance: a running one died with the earlier shim, and
            # one waiting in back-off is represented by the instance that ended.
            status.restart_count = old.restart_count
            status.container_id = old.container_id
            status.last_state = old.last_state
            if old.running:
                started = old.state["running"].get("startedAt")
                status.state = {"terminated": {
                    "exitCode": 137, "reason": "Error", "startedAt": started,
                    "finishedAt": rfc3339(), "containerID": old.container_id,
                }}  # fmt: skip
            elif old.terminated is not None:
                status.state = old.state
            elif "terminated" in old.last_state:
                status.state = old.last_state
        return ContainerRunner(self, cfg, status)

    def save(self) -> None:
        write_json(self.dir.status, self.status.to_dict())

    async def run(self) -> None:
        policy = self.config.restart_policy
        for runner in self.init_runners:
            if not await runner.supervise(policy, init=True):
                return  # failed for good (restartPolicy Never) or stopping
        await asyncio.gather(*(r.supervise(policy, init=False) for r in self.runners))

    async def stop(self, grace: float) -> None:
        self.stopping = True
        self.status.phase = "stopping"
        self.save()
        runners = self.init_runners + self.runners
        for runner in runners:
            runner.wake()
        await asyncio.gather(*(r.kill(grace) for r in runners))
        self.status.phase = "stopped"
        self.save()

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "status":
            return {"ok": True, "status": self.status.to_dict()}
        grace = request.get("grace")
        grace = float(self.config.grace_seconds if grace is None else grace)
        if op == "stop":
            await self.stop(grace)
            return {"ok": True}
        if op == "restart":
            name = request.get("container")
            runner = next((r for r in self.init_runners + self.runners if r.cfg.name == name), None)
            if runner is None:
                return {"ok": False, "error": f"container {name!r} not found"}
            await runner.restart(grace)
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    reply = await self.handle(json.loads(line))
                except (ValueError, TypeError, LookupError) as exc:
                    reply = {"ok": False, "error": str(exc)}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
                if self.status.phase == "stopped":
                    self.done.set()  # only once the agent has its answer
        except ConnectionError:
            pass
        finally:
            writer.close()


def _report_crash(task: asyncio.Task[None]) -> None:
    """A supervisor bug must not pass silently: it goes to the shim's log."""
    if not task.cancelled() and task.exception() is not None:
        traceback.print_exception(task.exception(), file=sys.stderr)


async def _main(pod_dir: PodDir, config: ShimConfig, ready_fd: int | None) -> None:
    shim = Shim(pod_dir, config)
    shim.save()
    pod_dir.socket.unlink(missing_ok=True)
    with socket_path(pod_dir.socket) as address:
        server = await asyncio.start_unix_server(shim.serve, path=address)
    pod_dir.pidfile.write_text(f"{os.getpid()}\n")
    if ready_fd is not None:
        os.write(ready_fd, b"ok")
        os.close(ready_fd)
    runner = asyncio.create_task(shim.run())
    runner.add_done_callback(_report_crash)
    await shim.done.wait()
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    server.close()
    pod_dir.socket.unlink(missing_ok=True)
    pod_dir.pidfile.unlink(missing_ok=True)


def _detach() -> int:
    """Fork; the parent waits until the child serves, then exits with 0 (or 1 if it failed)."""
    read_end, write_end = os.pipe()
    if os.fork() > 0:
        os.close(write_end)
        ok = os.read(read_end, 2) == b"ok"
        os._exit(0 if ok else 1)
    os.close(read_end)
    os.setsid()
    return write_end


def main(argv: list[str]) -> None:
    daemon = "--daemon" in argv
    args = [a for a in argv if a != "--daemon"]
    if len(args) != 1:
        sys.exit("usage: python -m kubesvc.node.shim [--daemon] <pod-dir>")
    pod_dir = PodDir(Path(args[0]).resolve())
    ready_fd = _detach() if daemon else None
    config = ShimConfig.from_dict(read_json(pod_dir.config))
    # Before any thread exists: setns() only moves the calling thread.
    enter_pod_namespaces(config.netns, config.hostname)
    asyncio.run(_main(pod_dir, config, ready_fd))


if __name__ == "__main__":
    main(sys.argv[1:])
