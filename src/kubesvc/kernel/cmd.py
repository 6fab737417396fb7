"""Running the system tools (ip, nft, nsenter, ...) that the kernel package wraps."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence


class CommandError(Exception):
    """A tool exited non-zero; the message carries its command line and stderr."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"{' '.join(self.argv)}: exit {returncode}: {self.stderr}")


async def run(argv: Sequence[str], *, input: str | None = None, check: bool = True) -> str:
    """Run `argv`, feed it `input`, return its stdout; raise CommandError if it fails."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(input.encode() if input is not None else None)
    assert proc.returncode is not None
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, err.decode(errors="replace"))
    return out.decode(errors="replace")
