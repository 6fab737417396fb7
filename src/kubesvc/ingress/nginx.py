"""nginx as the controller's child: started in the foreground, configurations tested before
they are used, reloaded gracefully and stopped gracefully.

A reload is nginx's own SIGHUP: the master opens the new configuration on the listening
sockets it already holds, starts new workers and lets the old ones finish the requests they
have, so no connection is refused and no request in flight is cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path


class NginxError(Exception):
    """nginx rejected a configuration or could not run; the message is nginx's."""


class Nginx:
    def __init__(self, binary: str, prefix: Path) -> None:
        self.binary = binary
        self.prefix = prefix
        self.conf = prefix / "nginx.conf"
        self.process: asyncio.subprocess.Process | None = None

    def _argv(self, conf: Path, *extra: str) -> list[str]:
        return [self.binary, "-p", f"{self.prefix}/", "-c", str(conf), "-e", "stderr", *extra]

    async def test(self, text: str) -> None:
        """Check a configuration with `nginx -t` without using it; NginxError if it fails."""
        candidate = self.conf.with_name("nginx.conf.new")
        candidate.write_text(text)
        proc = await asyncio.create_subprocess_exec(
            *self._argv(candidate, "-t", "-q"), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await proc.communicate()
        if proc.returncode != 0:
            raise NginxError(output.decode(errors="replace").strip())

    async def apply(self, text: str) -> None:
        """Test `text`, make it the configuration, and start or reload nginx with it."""
        await self.test(text)
        os.replace(self.conf.with_name("nginx.conf.new"), self.conf)
        if self.process is None:
            # nginx's own output (error log, access log) is the container's.
            self.process = await asyncio.create_subprocess_exec(
                *self._argv(self.conf), stdin=asyncio.subprocess.DEVNULL)
        else:
            self.process.send_signal(signal.SIGHUP)

    async def wait(self) -> int:
        """Until the master exits (it should not while the controller runs)."""
        assert self.process is not None
        return await self.process.wait()

    async def stop(self, grace: float) -> None:
        """SIGQUIT (finish the requests in flight, then exit), SIGKILL after `grace`."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGQUIT)
        try:
            await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
