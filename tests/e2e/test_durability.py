"""State survives crashes: every acknowledged write is there after a SIGKILL, and a watch
resumes from a resourceVersion across a restart."""

import asyncio
from pathlib import Path

import aiohttp

from kubesvc.api.errors import ApiError
from kubesvc.api.resources import of
from kubesvc.client.rest import Client
from kubesvc.testing import Cluster, configmap

CONFIGMAPS = of("v1", "ConfigMap")


async def _burst(cluster: Cluster, acknowledged: list[str], stop_after: int) -> None:
    client = Client.for_cluster(cluster.config)

    async def writer(worker: int) -> None:
        for i in range(10_000):
            name = f"burst-{worker}-{i}"
            try:
                await client.create(CONFIGMAPS, {"metadata": {"name": name},
                                                 "data": {"i": str(i)}}, "default")
            except (TimeoutError, ApiError, aiohttp.ClientError, OSError):
                return
            acknowledged.append(name)
            if len(acknowledged) == stop_after:
                cluster.kill()

    try:
        await asyncio.gather(*(writer(w) for w in range(8)))
    finally:
        await client.close()


def test_sigkill_during_a_burst_loses_no_acknowledged_write(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "state")
    cluster.start()
    acknowledged: list[str] = []
    try:
        asyncio.run(_burst(cluster, acknowledged, stop_after=300))
        assert cluster.process is not None and cluster.process.returncode == -9
        cluster.start()
        out = cluster.kubectl("get", "configmaps", "-o", "name").stdout.split()
        stored = {line.removeprefix("configmap/") for line in out}
        missing = [name for name in acknowledged if name not in stored]
        assert len(acknowledged) >= 300
        assert missing == []
    finally:
        cluster.stop()


async def _watch_from(cluster: Cluster, rv: str, until: str) -> list[tuple[str, str]]:
    client = Client.for_cluster(cluster.config)
    seen: list[tuple[str, str]] = []
    try:
        async for kind, obj in client.watch(CONFIGMAPS, "default", resource_version=rv,
                                            timeout=20):
            if kind == "BOOKMARK":
                continue
            seen.append((kind, obj["metadata"]["name"]))
            if obj["metadata"]["name"] == until:
                break
    finally:
        await client.close()
    return seen


async def _list_revision(cluster: Cluster) -> str:
    client = Client.for_cluster(cluster.config)
    try:
        _, rv = await client.list(CONFIGMAPS, "default")
    finally:
        await client.close()
    return rv


def test_watch_resumes_across_a_restart(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "state")
    cluster.start()
    try:
        cluster.apply(configmap("before"))
        listed = asyncio.run(_list_revision(cluster))
        cluster.apply(configmap("while-up"))
        cluster.stop()
        cluster.start()
        cluster.apply(configmap("after-restart"))
        seen = asyncio.run(_watch_from(cluster, listed, "after-restart"))
        assert seen == [("ADDED", "while-up"), ("ADDED", "after-restart")]
    finally:
        cluster.stop()
