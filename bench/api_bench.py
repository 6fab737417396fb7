"""API server throughput: objects created per second, and watch event latency (p50/p99).

Runs a real `kubesvc up` in a temporary state directory and drives it with kubesvc's own
async client over HTTPS, as every component does.

    .venv/bin/python bench/api_bench.py [--objects 2000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from kubesvc.api.resources import of
from kubesvc.client.rest import Client
from kubesvc.testing import Cluster, configmap

CONFIGMAPS = of("v1", "ConfigMap")


async def create_rate(client: Client, prefix: str, count: int, concurrency: int) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            await client.create(CONFIGMAPS, configmap(f"{prefix}-{i}", i=str(i)), "default")

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - start)


async def watch_latency(client: Client, count: int) -> list[float]:
    """Seconds from sending a create to seeing its ADDED event on an open watch."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
    _, rv = await client.list(CONFIGMAPS, "default")
    done = asyncio.Event()

    async def follow() -> None:
        async for kind, obj in client.watch(CONFIGMAPS, "default", resource_version=rv):
            name = obj["metadata"].get("name", "")
            if kind == "ADDED" and name in sent:
                latencies.append(time.perf_counter() - sent[name])
                if len(latencies) == count:
                    done.set()
                    return

    watcher = asyncio.create_task(follow())
    for i in range(count):
        name = f"watched-{i}"
        sent[name] = time.perf_counter()
        await client.create(CONFIGMAPS, configmap(name), "default")
    await asyncio.wait_for(done.wait(), 60)
    watcher.cancel()
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def measure(cluster: Cluster, objects: int, concurrency: int) -> None:
    client = Client.for_cluster(cluster.config)
    try:
        serial = await create_rate(client, "serial", objects // 4, 1)
        parallel = await create_rate(client, "parallel", objects, concurrency)
        latencies = await watch_latency(client, 500)
    finally:
        await client.close()
    ms = [x * 1000 for x in latencies]
    print(f"creates/s, one client at a time : {serial:8.0f}")
    print(f"creates/s, {concurrency:2d} concurrent        : {parallel:8.0f}  "
          f"({parallel / serial:.2f}x serial)")
    print(f"watch latency ms (create sent -> ADDED seen, {len(ms)} events): "
          f"p50 {statistics.median(ms):.2f}  p99 {percentile(ms, 99):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp) / "state")
        cluster.start()
        try:
            asyncio.run(measure(cluster, args.objects, args.concurrency))
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
