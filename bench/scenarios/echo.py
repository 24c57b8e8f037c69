"""The WebSocket floor: a round trip through the gateway's own server stack (uvicorn, wsproto,
Starlette, as `gateway/server.py` runs them; `bench/scenarios/echo_server.py`) and the bench's own client
(`parley_client.Session`, as the latency runs use it), with nothing of Parley between them.

A Parley message crosses a socket twice (the sender's `send`, the receiver's `message`), as this
round trip does; what the echo costs is the part of Parley's latency that the server stack and
the client take, whatever the pipeline does. Its records are frames about the size of a `send`
frame, sent round-robin over as many sockets as the 1:1 latency runs have pairs."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time

from bench.harness.load import TEXT
from bench.harness.roundtrip import RoundTrip
from bench.scenarios.echo_server import PATH
from parley_client import Session, SessionError

SEQ_DIGITS = 12
# About a `send` frame: the bench's text, its channel id and client message id.
PADDING = '{"type":"send","client_msg_id":"","channel_id":"100000000000000000","text":"' + TEXT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EchoFloor(RoundTrip):
    label = "WebSocket echo floor"
    kind = "echo"

    def __init__(self, sockets: int) -> None:
        super().__init__()
        self.sockets = sockets
        self.url = ""
        self._proc: asyncio.subprocess.Process | None = None
        self._sessions: list[Session] = []
        self._readers: list[asyncio.Task[None]] = []

    async def start(self, timeout_s: float = 60.0) -> None:
        port = _free_port()
        self.url = f"ws://127.0.0.1:{port}{PATH}"
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.scenarios.echo_server",
            str(port),
            stdout=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while len(self._sessions) < self.sockets:
            try:
                session = await Session.open(self.url, proxy=None, open_timeout_s=10, max_queue=256)
            except SessionError:
                if time.monotonic() > deadline or self._proc.returncode is not None:
                    raise RuntimeError(f"the echo server at {self.url} did not answer") from None
                await asyncio.sleep(0.2)
                continue
            self._sessions.append(session)
            self._readers.append(asyncio.create_task(self._read(session)))

    async def _read(self, session: Session) -> None:
        async for now, raw in session.stamped_frames():
            self.arrived(int(raw[:SEQ_DIGITS]), now)

    async def _send(self, seq: int) -> None:
        session = self._sessions[seq % len(self._sessions)]
        try:
            await session.send_raw(f"{seq:0{SEQ_DIGITS}d}{PADDING}")
        except SessionError:
            self.failed(seq)

    async def stop(self) -> None:
        for task in self._readers:
            task.cancel()
        for session in self._sessions:
            with contextlib.suppress(Exception):
                await session.close()
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 15)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
