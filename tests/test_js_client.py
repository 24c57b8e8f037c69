"""The JavaScript client library (clients/js/) against the real stack: its own tests, with
node's test runner (`node --test`), log in, send, receive on a second client, resume after
reconnects and refuse a bad token; and its TypeScript declarations, checked by `tsc`."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack import Process, Stack

CLIENT_DIR = Path(__file__).resolve().parent.parent / "clients" / "js"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("the JavaScript client's tests need Node.js 20.10 or newer (make test says so)")
    return node


ADMIN_TOKEN = "operator-token-for-the-js-tests-0123456789"


@pytest.fixture
def admin_gateway(stack: Stack) -> Iterator[Process]:
    """A second gateway of the stack with the operator's token, for the admin API."""
    gateway = stack.start_gateway(PARLEY_ADMIN_TOKEN=ADMIN_TOKEN)
    yield gateway
    gateway.stop()


def test_the_js_client_against_the_stack(gateway: Process, admin_gateway: Process) -> None:
    admin = {"PARLEY_ADMIN_URL": admin_gateway.url, "PARLEY_ADMIN_TOKEN": ADMIN_TOKEN}
    result = subprocess.run(
        [_node(), "--experimental-websocket", "--test", "test/"],
        cwd=CLIENT_DIR,
        env={**os.environ, "PARLEY_URL": gateway.url, "NODE_NO_WARNINGS": "1", **admin},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    # Every test ran (none skipped for want of the stack's URL).
    assert "# fail 0" in result.stdout and "# skipped 0" in result.stdout, result.stdout


def test_the_typescript_declarations_check() -> None:
    tsc = CLIENT_DIR / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        pytest.fail("TypeScript is not installed for clients/js: run `make js` (make test does)")
    result = subprocess.run(
        [_node(), str(tsc), "--noEmit", "-p", str(CLIENT_DIR)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
