"""Probe parsing, ports by name, and the thresholds of a ProbeWorker."""

from __future__ import annotations

import asyncio
import sys

import pytest

from kubesvc.node.probes import ContainerProber, Probe, ProbeTarget, ProbeWorker, run_action


def test_defaults() -> None:
    probe = Probe.from_spec({"httpGet": {"path": "/", "port": 80}})
    assert (probe.kind, probe.initial_delay, probe.period, probe.timeout) == ("httpGet", 0, 10, 1)
    assert (probe.success_threshold, probe.failure_threshold) == (1, 3)


def test_explicit_values() -> None:
    probe = Probe.from_spec(
        {
            "tcpSocket": {"port": "http"},
            "initialDelaySeconds": 5,
            "periodSeconds": 2,
            "timeoutSeconds": 3,
            "successThreshold": 2,
            "failureThreshold": 4,
        }
    )
    assert probe.kind == "tcpSocket"
    assert (probe.initial_delay, probe.period, probe.timeout) == (5, 2, 3)
    assert (probe.success_threshold, probe.failure_threshold) == (2, 4)


def test_probe_without_handler() -> None:
    with pytest.raises(ValueError, match="no handler"):
        Probe.from_spec({"periodSeconds": 1})


def test_ports_by_number_and_name() -> None:
    target = ProbeTarget("10.244.0.2", ports=[{"name": "http", "containerPort": 8080}])
    assert target.port(80) == 80
    assert target.port("81") == 81
    assert target.port("http") == 8080
    with pytest.raises(LookupError):
        target.port("metrics")


def _exec_target() -> ProbeTarget:
    # Exec probes run whatever argv the runtime builds; here: the command itself.
    return ProbeTarget("127.0.0.1", exec_argv=lambda argv: argv)


async def test_exec_action_and_timeout() -> None:
    target = _exec_target()
    assert await run_action("exec", {"command": ["true"]}, target, 5) == (True, "")
    ok, message = await run_action("exec", {"command": ["sh", "-c", "echo bad; exit 3"]}, target, 5)
    assert (ok, message) == (False, "bad")
    ok, message = await run_action("exec", {"command": ["sleep", "5"]}, target, 0.2)
    assert not ok and "timed out" in message


async def test_http_and_tcp_on_loopback() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        code = b"200 OK" if request.startswith(b"GET /ok ") else b"503 Unavailable"
        assert b"User-Agent: kube-probe/" in request and b"X-Check: 1" in request
        writer.write(b"HTTP/1.1 " + code + b"\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    target = ProbeTarget("127.0.0.1", ports=[{"name": "web", "containerPort": port}])
    headers = [{"name": "X-Check", "value": "1"}]
    ok = await run_action(
        "httpGet", {"path": "/ok", "port": "web", "httpHeaders": headers}, target, 5
    )
    assert ok == (True, "")
    ok = await run_action(
        "httpGet", {"path": "/bad", "port": port, "httpHeaders": headers}, target, 5
    )
    assert ok == (False, "HTTP probe failed with statuscode: 503")
    assert await run_action("tcpSocket", {"port": port}, target, 5) == (True, "")
    server.close()
    await server.wait_closed()
    refused, message = await run_action("tcpSocket", {"port": port}, target, 5)
    assert not refused and "connect" in message


async def test_worker_thresholds() -> None:
    # The probe reads a script of outcomes: fail, fail, succeed, succeed, then fail forever.
    outcomes = iter([1, 1, 0, 0])
    changes: list[bool] = []
    probe = Probe("exec", {"command": []}, period=0.01, success_threshold=2, failure_threshold=2)

    def argv(_: list[str]) -> list[str]:
        return [sys.executable, "-c", f"raise SystemExit({next(outcomes, 1)})"]

    worker = ProbeWorker(
        probe, ProbeTarget("127.0.0.1", exec_argv=argv), False, lambda ok, _: changes.append(ok)
    )
    worker.start()
    for _ in range(500):
        if changes == [True, False]:
            break
        await asyncio.sleep(0.02)
    await worker.stop()
    assert changes == [True, False]


async def test_container_prober_without_probes_is_ready_at_once() -> None:
    events: list[str] = []
    prober = ContainerProber({"name": "c"}, _exec_target(), lambda event, _: events.append(event))
    prober.start()
    await prober.stop()
    assert events == ["started", "ready"]
    assert prober.started and prober.ready
