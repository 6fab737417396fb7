"""The shim's pure parts: crash-loop back-off, exit codes, start errors, CRI logs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kubesvc.node.logs import LogWriter, read_log
from kubesvc.node.podfiles import ContainerConfig
from kubesvc.node.shim import Backoff, exit_code, go_duration, start_error


def test_backoff_sequence() -> None:
    backoff = Backoff()
    t = 1000.0
    assert backoff.remaining(t, t) == 0  # first restart: at once
    backoff.next(t, t)
    delays = []
    for _ in range(7):
        t += 1  # the container crashes one second after each start
        delays.append(backoff.remaining(t, t))
        t += delays[-1]
        backoff.next(t - delays[-1], t)
    assert delays == [10, 20, 40, 80, 160, 300, 300]


def test_backoff_resets_after_ten_minutes() -> None:
    backoff = Backoff()
    backoff.next(0, 0)
    backoff.next(5, 10)
    assert backoff.duration == 20
    assert backoff.remaining(10 + 601, 10 + 601) == 0
    backoff.next(611, 611)
    assert backoff.duration == 10


def test_go_duration_and_exit_codes() -> None:
    assert [go_duration(s) for s in (10, 80, 300)] == ["10s", "1m20s", "5m0s"]
    assert (exit_code(0), exit_code(3), exit_code(-9), exit_code(-15)) == (0, 3, 137, 143)


def test_start_error(tmp_path: Path) -> None:
    env = [("PATH", "/usr/bin:/bin")]
    assert start_error(ContainerConfig("c", "i", argv=["sh"], env=env)) is None
    missing = ContainerConfig("c", "i", argv=["no-such-program"], env=env)
    assert start_error(missing) == 'exec: "no-such-program": executable file not found in $PATH'
    assert start_error(ContainerConfig("c", "i", argv=[], env=env)) == "no command specified"
    cwd = ContainerConfig("c", "i", argv=["sh"], env=env, cwd=str(tmp_path / "nope"))
    assert "chdir" in (start_error(cwd) or "")


async def test_logs_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "c" / "0.log"
    writer = LogWriter(path)
    writer.write("stdout", b"one\ntw")
    writer.write("stderr", b"err\n")
    writer.write("stdout", b"o\nthree")
    writer.close()
    assert [line async for line in read_log(path)] == ["one\n", "err\n", "two\n", "three\n"]
    assert [line async for line in read_log(path, tail_lines=2)] == ["two\n", "three\n"]
    stamped = [line async for line in read_log(path, timestamps=True, tail_lines=1)]
    assert stamped[0].endswith("Z three\n") and stamped[0][:4].isdigit()
    assert [line async for line in read_log(path, limit_bytes=6)] == ["one\n", "er"]


async def test_long_lines_are_split_and_joined(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = LogWriter(path)
    writer.write("stdout", b"x" * 40000 + b"\n")
    writer.close()
    assert b" P " in path.read_bytes()
    assert [line async for line in read_log(path)] == ["x" * 40000 + "\n"]


async def test_follow_until_the_instance_ends(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = LogWriter(path)
    writer.write("stdout", b"first\n")
    running = True

    async def later() -> None:
        nonlocal running
        await asyncio.sleep(0.3)
        writer.write("stdout", b"second\n")
        writer.close()
        running = False

    task = asyncio.create_task(later())
    lines = [line async for line in read_log(path, follow=True, still_running=lambda: running)]
    await task
    assert lines == ["first\n", "second\n"]
