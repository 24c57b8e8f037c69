"""A process of the bench's own that it talks to in lines (the two-hop floors' relay, the
native floor client): started with its command line, it prints `ready` once it can work,
answers each request line on its stdin with one line on its stdout, and exits when its stdin
closes."""

from __future__ import annotations

import asyncio
from pathlib import Path

READY = b"ready"


class Child:
    def __init__(self, name: str, *argv: str | Path, line_limit: int = 64 * 1024) -> None:
        """`name` says whose error it is; `line_limit`: the longest answer, in bytes."""
        self.name = name
        self.argv = argv
        self.line_limit = line_limit
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self, timeout_s: float = 60.0) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=self.line_limit,
        )
        line = await self._line(timeout_s)
        if line != READY:
            raise RuntimeError(f"{self.name} did not start: {line!r}")

    async def ask(self, request: bytes, timeout_s: float) -> bytes:
        """The answer to one request line."""
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(request + b"\n")
        await self._proc.stdin.drain()
        answer = await self._line(timeout_s)
        if not answer:
            raise RuntimeError(f"{self.name} exited instead of answering {request!r}")
        return answer

    async def _line(self, timeout_s: float) -> bytes:
        assert self._proc is not None and self._proc.stdout is not None
        return (await asyncio.wait_for(self._proc.stdout.readline(), timeout_s)).strip()

    async def stop(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 15.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()
