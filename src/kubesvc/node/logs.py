"""Container logs in the CRI format the kubelet reads, and a reader for `kubectl logs`.

Each line is `<RFC3339Nano time> <stdout|stderr> <F|P> <content>`: F ends a line, P is a piece
of a longer one (or of a line still being written), as containerd writes them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

MAX_LINE = 16 * 1024  # containerd's buffer: longer lines are written as several P pieces
FOLLOW_POLL_SECONDS = 0.2


def rfc3339nano(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{frac:09d}Z"


def _parse_ns(stamp: str) -> int:
    whole, _, frac = stamp.rstrip("Z").partition(".")
    seconds = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return int(seconds.timestamp()) * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


class LogWriter:
    """Appends one container instance's stdout and stderr to its CRI log file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = path.open("ab", buffering=0)
        self._pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, data: bytes) -> None:
        *lines, rest = (self._pending[stream] + data).split(b"\n")
        out = []
        for line in lines:
            while len(line) > MAX_LINE:
                out.append(self._record(stream, b"P", line[:MAX_LINE]))
                line = line[MAX_LINE:]
            out.append(self._record(stream, b"F", line))
        while len(rest) >= MAX_LINE:
            out.append(self._record(stream, b"P", rest[:MAX_LINE]))
            rest = rest[MAX_LINE:]
        self._pending[stream] = rest
        if out:
            self._file.write(b"".join(out))

    def close(self) -> None:
        """Flush unterminated output as complete lines, as the stream has ended."""
        for stream, rest in self._pending.items():
            if rest:
                self._file.write(self._record(stream, b"F", rest))
        self._file.close()

    @staticmethod
    def _record(stream: str, tag: bytes, content: bytes) -> bytes:
        return b"%s %s %s %s\n" % (rfc3339nano().encode(), stream.encode(), tag, content)


def _parse_records(data: bytes) -> tuple[list[tuple[str, str]], int]:
    """(timestamp, line) for each complete log line in `data`, P pieces joined, and how many
    bytes those span: an unfinished record, or pieces whose F is still to come, wait."""
    lines: list[tuple[str, str]] = []
    partial: list[bytes] = []
    consumed = pos = 0
    while (end := data.find(b"\n", pos)) != -1:
        fields = data[pos:end].split(b" ", 3)
        pos = end + 1
        if len(fields) < 4:
            consumed = consumed if partial else pos  # not a record: skip it
            continue
        partial.append(fields[3])
        if fields[2] == b"F":
            lines.append((fields[0].decode(), b"".join(partial).decode(errors="replace")))
            partial = []
            consumed = pos
    return lines, consumed


async def read_log(
    path: Path,
    *,
    timestamps: bool = False,
    tail_lines: int | None = None,
    since: datetime | None = None,
    limit_bytes: int | None = None,
    follow: bool = False,
    still_running: Callable[[], bool] | None = None,
) -> AsyncIterator[str]:
    """Yield the log's lines (each ending in a newline), as `kubectl logs` options ask.

    With `follow`, keep yielding new lines until `still_running()` says the container instance
    has ended and everything it wrote has been read.
    """
    since_ns = int(since.timestamp() * 1_000_000_000) if since is not None else None
    budget = limit_bytes
    with path.open("rb") as f:
        records, used = _parse_records(f.read())
        rest = b""
        f.seek(used)
        if tail_lines is not None:
            records = list(deque(records, maxlen=max(tail_lines, 0)))
        while True:
            for stamp, line in records:
                if since_ns is not None and _parse_ns(stamp) < since_ns:
                    continue
                text = f"{stamp} {line}\n" if timestamps else f"{line}\n"
                if budget is not None:
                    if budget <= 0:
                        return
                    text = text.encode()[:budget].decode(errors="ignore")
                    budget -= len(text.encode())
                yield text
            if not follow:
                return
            records = []
            chunk = f.read()
            if not chunk:
                if still_running is not None and not still_running():
                    chunk = f.read()  # the last words written before the state changed
                    if not chunk:
                        return
                else:
                    await asyncio.sleep(FOLLOW_POLL_SECONDS)
                    continue
            data = rest + chunk
            records, used = _parse_records(data)
            rest = data[used:]
