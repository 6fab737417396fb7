"""The pod runtime on real namespaces (root): isolated nodes, pods, restarts, probes, re-adoption.

Every namespace, link and process made here belongs to nodes named `kt<pid>…`; the last test
checks that none of them is left. Traffic only goes to addresses inside those namespaces.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from kubesvc.kernel.netns import list_netns, open_socket
from kubesvc.kernel.nodenet import NodeNetwork
from kubesvc.node.probes import ContainerProber
from kubesvc.node.runtime import PodState, Runtime

pytestmark = [pytest.mark.root, pytest.mark.asyncio(loop_scope="module")]

PREFIX = f"kt{os.getpid() % 100000}"
TOOLS = ("ip", "nft", "nsenter", "unshare", "setpriv", "sysctl", "nginx", "busybox")
WELCOME = "<title>Welcome to nginx!</title>"


def _require_root_and_tools() -> None:
    if os.geteuid() != 0:
        pytest.fail("the runtime integration tests need root (network namespaces)")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing tools: {', '.join(missing)}")


def in_netns(netns: str | None, *argv: str) -> str:
    assert netns is not None
    nsenter = ["nsenter", f"--net=/run/netns/{netns}", "--"]
    return subprocess.run([*nsenter, *argv], capture_output=True, text=True, check=True).stdout


def host_forwarding() -> str:
    return Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node() -> AsyncIterator[NodeNetwork]:
    _require_root_and_tools()
    forwarding = host_forwarding()
    net = NodeNetwork(f"{PREFIX}a", "10.244.0.0/24")
    try:
        await net.setup()
        yield net
    finally:
        await net.teardown()
    assert host_forwarding() == forwarding


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def runtime(
    node: NodeNetwork, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Runtime]:
    rt = Runtime(tmp_path_factory.mktemp("state"), node)
    try:
        yield rt
    finally:
        for uid in rt.known_pods():
            await rt.stop_pod(uid, 0)


def make_pod(name: str, image: str, **container: Any) -> dict[str, Any]:
    spec = container.pop("spec", {})
    return {
        "metadata": {"name": name, "namespace": "default", "uid": str(uuid.uuid4())},
        "spec": {
            "containers": [{"name": name, "image": image, **container}],
            "terminationGracePeriodSeconds": 1,
            **spec,
        },
    }


def uid(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["uid"])


async def wait_for(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll until `check()` is truthy; fail naming `what` if it never is."""
    for _ in range(int(timeout / 0.1)):
        result = check()
        if result:
            return result
        await asyncio.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def state(rt: Runtime, pod: dict[str, Any]) -> PodState:
    got = rt.pod_state(uid(pod))
    assert got is not None
    return got


def container_state(rt: Runtime, pod: dict[str, Any]) -> dict[str, Any]:
    return state(rt, pod).containers[0].state


async def running(rt: Runtime, pod: dict[str, Any], restarts: int = 0) -> None:
    def check() -> bool:
        c = state(rt, pod).containers[0]
        return c.running and c.restart_count == restarts and c.pid is not None

    await wait_for(check, f"{pod['metadata']['name']} running with {restarts} restarts")


def pod_exec(rt: Runtime, pod: dict[str, Any], *argv: str) -> str:
    name = pod["metadata"]["name"]
    out = subprocess.run(
        rt.exec_argv(uid(pod), name, list(argv)), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


async def welcome_page(rt: Runtime, client: dict[str, Any], ip: str) -> None:
    """Wait until `client` fetches nginx's welcome page from `ip` (busybox wget, as in the seed;
    not `wget -T`, which segfaults in this busybox)."""
    url = f"http://{ip}/"
    await wait_for(lambda: WELCOME in pod_exec(rt, client, "wget", "-q", "-O", "-", url), url)


async def logs(rt: Runtime, pod: dict[str, Any], **options: Any) -> str:
    name = pod["metadata"]["name"]
    return "".join([line async for line in rt.log_reader(uid(pod), name, **options)])


async def test_two_isolated_nodes_side_by_side(node: NodeNetwork, tmp_path: Path) -> None:
    other = NodeNetwork(f"{PREFIX}b", "10.244.0.0/24")
    other_runtime = Runtime(tmp_path, other)
    try:
        await other.setup()
        await other.setup()  # idempotent
        assert {node.netns, other.netns} <= set(list_netns())
        assert node.node_ip != other.node_ip
        assert NodeNetwork(f"{PREFIX}b").netns == other.netns
        again = NodeNetwork(f"{PREFIX}b", "10.244.0.0/24")
        await again.setup()
        assert again.node_ip == other.node_ip  # re-setup after a restart finds the same link
        guard = in_netns(other.netns, "nft", "list", "table", "inet", "kubesvc-guard")
        assert 'iifname "kbr0" oifname != "kbr0" ip daddr != @allowed' in guard
        assert in_netns(other.netns, "sysctl", "-n", "net.ipv4.ip_forward").strip() == "1"
        # The same pod CIDR in both nodes: each node is a world of its own.
        pod = make_pod("elsewhere", "busybox", command=["sleep", "3600"])
        await other_runtime.run_pod(pod, {})
        await running(other_runtime, pod)
        assert other_runtime.pod_ip(uid(pod)) == "10.244.0.2"
        assert pod_exec(other_runtime, pod, "hostname").strip() == "elsewhere"
        # The host reaches the node's IP: a listener inside the node, a client on the host.
        listener = await open_socket(other.netns)
        listener.bind((other.node_ip, 0))
        listener.listen()
        port = listener.getsockname()[1]
        loop = asyncio.get_running_loop()
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, (other.node_ip, port))
        client.close()
        listener.close()
    finally:
        await other_runtime.stop_all_pods(0)
        await other.teardown()
    assert other.netns not in list_netns()
    assert not Path(f"/sys/class/net/{other.host_link}").exists()


async def test_pods_serve_the_welcome_page(runtime: Runtime) -> None:
    web1, web2 = make_pod("web-1", "nginx:alpine"), make_pod("web-2", "docker.io/library/nginx")
    client = make_pod("client", "busybox", command=["sleep", "3600"])
    for pod in (web1, web2, client):
        await runtime.run_pod(pod, {})
        await runtime.run_pod(pod, {})  # idempotent
    for pod in (web1, web2, client):
        await running(runtime, pod)
    ips = {runtime.pod_ip(uid(p)) for p in (web1, web2, client)}
    assert len(ips) == 3 and all(ip.startswith("10.244.0.") for ip in ips)
    for web in (web1, web2):
        await welcome_page(runtime, client, runtime.pod_ip(uid(web)))
    assert pod_exec(runtime, client, "hostname").strip() == "client"
    assert pod_exec(runtime, client, "cat", "/etc/resolv.conf").startswith(
        "search default.svc.cluster.local svc.cluster.local cluster.local"
    )
    assert "nameserver 10.96.0.10\noptions ndots:5\n" in pod_exec(
        runtime, client, "cat", "/etc/resolv.conf"
    )
    hosts = pod_exec(runtime, client, "cat", "/etc/hosts")
    assert f"{runtime.pod_ip(uid(client))}\tclient\n" in hosts and "127.0.0.1\tlocalhost" in hosts
    # Its own PID namespace: sleep is PID 1; /bin/sh is busybox even in the nginx pod.
    assert pod_exec(runtime, client, "cat", "/proc/1/cmdline").startswith("sleep")
    assert "BusyBox" in pod_exec(runtime, web1, "/bin/sh", "-c", "busybox | head -1")
    assert pod_exec(runtime, web1, "hostname").strip() == "web-1"
    assert not os.path.exists("/etc/netns/" + str(runtime.node.netns))  # nothing in the host's /etc


async def test_logs_show_requests(runtime: Runtime) -> None:
    web = make_pod("web-logs", "nginx:1.17")
    client = make_pod("client-logs", "busybox", command=["sleep", "3600"])
    await runtime.run_pod(web, {})
    await runtime.run_pod(client, {})
    await running(runtime, web)
    await running(runtime, client)
    await welcome_page(runtime, client, runtime.pod_ip(uid(web)))
    client_ip = runtime.pod_ip(uid(client))

    async def logged() -> bool:
        text = await logs(runtime, web)
        return f"{client_ip} - - [" in text and '"GET / HTTP/1.1" 200 612' in text

    for _ in range(100):
        if await logged():
            break
        await asyncio.sleep(0.1)
    assert await logged()
    assert "start worker process" in await logs(runtime, web)
    stamped = await logs(runtime, web, timestamps=True, tail_lines=1)
    assert stamped.count("\n") == 1 and stamped[:2] == "20" and "Z " in stamped


async def test_killed_container_restarts(runtime: Runtime) -> None:
    # `$$` is Kubernetes' escape for `$`: the shell sees `$$`, its PID (1 in the container).
    command = ["sh", "-c", "echo instance $$$$; exec sleep 3600"]
    pod = make_pod("restarts", "busybox", command=command)
    await runtime.run_pod(pod, {})
    await running(runtime, pod)
    pid = state(runtime, pod).containers[0].pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await running(runtime, pod, restarts=1)
    c = state(runtime, pod).containers[0]
    assert c.last_state["terminated"]["exitCode"] == 137
    assert c.last_state["terminated"]["reason"] == "Error"
    assert "instance 1" in await logs(runtime, pod, previous=True)


async def test_restart_policy_never(runtime: Runtime) -> None:
    pod = make_pod(
        "never",
        "busybox",
        command=["sh", "-c", "echo bye; exit 3"],
        spec={"restartPolicy": "Never"},
    )
    await runtime.run_pod(pod, {})
    await wait_for(lambda: "terminated" in container_state(runtime, pod), "termination")
    await asyncio.sleep(0.5)
    c = state(runtime, pod).containers[0]
    assert c.terminated is not None and c.terminated["exitCode"] == 3
    assert c.terminated["reason"] == "Error" and c.restart_count == 0
    assert state(runtime, pod).phase() == "Failed"
    assert await logs(runtime, pod) == "bye\n"
    done = make_pod("done", "busybox", command=["true"], spec={"restartPolicy": "OnFailure"})
    await runtime.run_pod(done, {})
    await wait_for(lambda: state(runtime, done).phase() == "Succeeded", "Succeeded")
    assert state(runtime, done).containers[0].terminated["reason"] == "Completed"  # type: ignore[index]


async def test_crash_loop_back_off(runtime: Runtime) -> None:
    pod = make_pod("crash", "busybox", command=["sh", "-c", "echo boom; exit 1"])
    await runtime.run_pod(pod, {})

    def backing_off() -> bool:
        waiting = container_state(runtime, pod).get("waiting", {})
        return bool(waiting.get("reason") == "CrashLoopBackOff")

    await wait_for(backing_off, "CrashLoopBackOff")
    c = state(runtime, pod).containers[0]
    assert c.restart_count == 1
    assert c.state["waiting"]["message"] == (
        f"back-off 10s restarting failed container=crash pod=crash_default({uid(pod)})"
    )
    assert c.last_state["terminated"]["exitCode"] == 1
    assert state(runtime, pod).phase() == "Running"
    assert await logs(runtime, pod) == "boom\n"
    assert await logs(runtime, pod, previous=True) == "boom\n"


async def test_start_error_and_unknown_image(runtime: Runtime) -> None:
    missing = make_pod(
        "nope", "busybox", command=["no-such-program"], spec={"restartPolicy": "Never"}
    )
    unknown = make_pod("redis", "redis:7")
    await runtime.run_pod(missing, {})
    await runtime.run_pod(unknown, {})
    await wait_for(lambda: "terminated" in container_state(runtime, missing), "StartError")
    terminated = container_state(runtime, missing)["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("StartError", 128)
    await wait_for(lambda: "waiting" in container_state(runtime, unknown), "ErrImagePull")
    waiting = container_state(runtime, unknown)["waiting"]
    assert waiting["reason"] == "ErrImagePull"
    assert "nginx:*" in waiting["message"] and "images.yaml" in waiting["message"]


async def test_env_and_working_dir(runtime: Runtime, tmp_path: Path) -> None:
    pod = make_pod(
        "envy", "busybox", command=["sleep", "3600"], workingDir=str(tmp_path),
        env=[{"name": "GREETING", "value": "hi $(WHO)"}],
    )  # fmt: skip
    env = {
        "envy": [("NGINX_SERVICE_HOST", "10.96.0.20"), ("WHO", "you"), ("GREETING", "hi $(WHO)")]
    }
    await runtime.run_pod(pod, env)
    await running(runtime, pod)
    out = pod_exec(runtime, pod, "env")
    assert "NGINX_SERVICE_HOST=10.96.0.20\n" in out and "GREETING=hi you\n" in out
    assert "HOSTNAME=envy\n" in out
    assert pod_exec(runtime, pod, "pwd").strip() == str(tmp_path)


async def test_liveness_failure_restarts(runtime: Runtime) -> None:
    liveness = {
        "httpGet": {"path": "/healthz", "port": 80},
        "periodSeconds": 1,
        "failureThreshold": 1,
    }
    pod = make_pod("alive", "nginx:alpine", livenessProbe=liveness)
    await runtime.run_pod(pod, {})
    await running(runtime, pod)
    events: list[tuple[str, str]] = []
    container = pod["spec"]["containers"][0]
    prober = ContainerProber(
        container, runtime.probe_target(uid(pod), "alive"), lambda e, m: events.append((e, m))
    )
    prober.start()
    try:
        await wait_for(
            lambda: ("liveness-failed", "HTTP probe failed with statuscode: 404") in events,
            "liveness failure",
        )
    finally:
        await prober.stop()
    await runtime.restart_container(uid(pod), "alive")
    await running(runtime, pod, restarts=1)


async def test_readiness_toggles(runtime: Runtime) -> None:
    readiness = {"httpGet": {"path": "/ready.html", "port": "http"}, "periodSeconds": 1}
    pod = make_pod(
        "ready",
        "nginx:alpine",
        readinessProbe=readiness,
        ports=[{"name": "http", "containerPort": 80}],
    )
    await runtime.run_pod(pod, {})
    await running(runtime, pod)
    events: list[str] = []
    prober = ContainerProber(
        pod["spec"]["containers"][0],
        runtime.probe_target(uid(pod), "ready"),
        lambda e, _: events.append(e),
    )
    page = runtime.state_dir / "pods" / uid(pod) / "nginx" / "html" / "ready.html"
    prober.start()
    try:
        await asyncio.sleep(1.5)
        assert events == ["started"] and not prober.ready
        page.write_text("ok\n")
        await wait_for(lambda: prober.ready, "ready")
        page.unlink()
        await wait_for(lambda: not prober.ready, "unready")
        assert events == ["started", "ready", "unready"]
    finally:
        await prober.stop()


async def test_host_network_pod(runtime: Runtime, node: NodeNetwork) -> None:
    pod = make_pod("hostnet", "busybox", command=["sleep", "3600"], spec={"hostNetwork": True})
    await runtime.run_pod(pod, {})
    await running(runtime, pod)
    assert runtime.pod_ip(uid(pod)) == node.node_ip
    assert f"inet {node.node_ip}/" in pod_exec(runtime, pod, "ip", "-4", "addr", "show", "eth0")
    assert "nameserver 10.96.0.10" not in pod_exec(runtime, pod, "cat", "/etc/resolv.conf")


async def test_agent_restart_readopts_pods(runtime: Runtime, node: NodeNetwork) -> None:
    web = make_pod("survivor", "nginx:alpine")
    client = make_pod("survivor-client", "busybox", command=["sleep", "3600"])
    await runtime.run_pod(web, {})
    await runtime.run_pod(client, {})
    await running(runtime, web)
    await running(runtime, client)
    before = {
        uid(p): (runtime.pod_ip(uid(p)), state(runtime, p).containers[0].container_id)
        for p in (web, client)
    }
    # The agent goes away: a new Runtime (and node object) over the same state directory.
    node2 = NodeNetwork(node.name, "10.244.0.0/24")
    await node2.setup()
    fresh = Runtime(runtime.state_dir, node2)
    assert {uid(web), uid(client)} <= set(fresh.known_pods())
    for pod in (web, client):
        await fresh.run_pod(pod, {})  # re-adoption: nothing restarts
        got = state(fresh, pod)
        assert got.sandbox_ready and got.containers[0].running
        assert (got.ip, got.containers[0].container_id) == before[uid(pod)]
        assert got.containers[0].restart_count == 0
    ip = fresh.pod_ip(uid(web))
    assert WELCOME in pod_exec(fresh, client, "wget", "-q", "-O", "-", f"http://{ip}/")


async def test_dead_shim_is_replaced(runtime: Runtime) -> None:
    pod = make_pod("orphan", "busybox", command=["sleep", "3600"])
    await runtime.run_pod(pod, {})
    await running(runtime, pod)
    shim_pid = int((runtime.state_dir / "pods" / uid(pod) / "shim.pid").read_text())
    container_pid = state(runtime, pod).containers[0].pid
    os.kill(shim_pid, signal.SIGKILL)
    # Its containers die with it (parent-death signals), and the sandbox reports not ready.
    await wait_for(lambda: not Path(f"/proc/{container_pid}/cmdline").exists(), "container death")
    await wait_for(lambda: not state(runtime, pod).sandbox_ready, "sandbox not ready")
    await runtime.run_pod(pod, {})
    await running(runtime, pod, restarts=1)
    assert state(runtime, pod).containers[0].last_state["terminated"]["exitCode"] == 137


async def test_stop_pod_releases_everything(runtime: Runtime, node: NodeNetwork) -> None:
    pod = make_pod(
        "stopper",
        "nginx:alpine",
        lifecycle={"preStop": {"exec": {"command": ["sh", "-c", "echo bye > /dev/null"]}}},
    )
    await runtime.run_pod(pod, {})
    await running(runtime, pod)
    sandbox = runtime.state_dir / "pods" / uid(pod)
    ip = runtime.pod_ip(uid(pod))
    pid = state(runtime, pod).containers[0].pid
    netns = [n for n in list_netns() if n.startswith(f"{node.netns}-")]
    await runtime.stop_pod(uid(pod), 5)
    await runtime.stop_pod(uid(pod), 5)  # idempotent
    assert runtime.pod_state(uid(pod)) is None and uid(pod) not in runtime.known_pods()
    assert not sandbox.exists()
    assert ip not in runtime.ipam.allocations()
    assert not Path(f"/proc/{pid}").exists()
    assert len([n for n in list_netns() if n.startswith(f"{node.netns}-")]) == len(netns) - 1


async def test_nothing_is_left(runtime: Runtime, node: NodeNetwork) -> None:
    """Runs last: stop every pod, tear the node down, and look for leftovers."""
    for pod_uid in runtime.known_pods():
        await runtime.stop_pod(pod_uid, 0)
    assert runtime.ipam.allocations() == {}
    await node.teardown()
    assert [n for n in list_netns() if n.startswith(f"ksvc-{PREFIX}")] == []
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"ksvc-{PREFIX}" not in links
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert "kubesvc-guard" not in tables
    leftover = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if str(runtime.state_dir).encode() in cmdline:
                leftover.append(cmdline)
    assert leftover == []
    await node.setup()  # the module fixture tears it down again
