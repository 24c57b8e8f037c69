"""The gateway's own frame encoding (gateway/wsprotocol.py) writes what wsproto would."""

from __future__ import annotations

import pytest
from wsproto.frame_protocol import FrameProtocol

from gateway.wsprotocol import text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 300_000])
@pytest.mark.parametrize("char", ["a", "é", "😀"])
def test_text_frame_is_wsprotos_frame_byte_for_byte(size: int, char: str) -> None:
    text = (char * size)[:size] if char == "a" else char * (size // len(char.encode()))
    expected = FrameProtocol(client=False, extensions=[]).send_data(text)
    assert text_frame(text) == bytes(expected)
