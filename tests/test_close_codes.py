"""The server and the client library name the same close codes (each has its own copy: the
client imports nothing of the server, and the server does not depend on the client's
packages), and docs/protocol.md lists each code the gateway sends."""

from __future__ import annotations

from pathlib import Path

import parley_client
from schemas.codes import CloseCode

PROTOCOL_MD = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def test_the_server_and_the_client_library_name_the_same_close_codes() -> None:
    server = {code.name: code.value for code in CloseCode}
    client = {code.name: code.value for code in parley_client.CloseCode}
    assert server == client


def test_the_protocol_document_lists_every_close_code() -> None:
    table = PROTOCOL_MD.read_text()
    # 1009 is uvicorn's (a frame over `ws_max_size`), not Parley's to document.
    missing = [
        c for c in CloseCode if c is not CloseCode.TOO_BIG and f"\n| {c.value} |" not in table
    ]
    assert missing == []
