"""What a process shows to whoever reaches its port: the processor only Parley's pages, the
gateway's metrics on a private address when one is set, and no shipped password (SPEC §5)."""

from __future__ import annotations

from pathlib import Path

import httpx

from devstack.embedded.process import free_port
from tests.conftest import extra_gateway
from tests.stack import Stack

INFRA = Path(__file__).resolve().parent.parent / "infra"


async def test_the_processor_serves_health_and_metrics_and_none_of_fausts_views(
    stack: Stack,
) -> None:
    processor = next(p for p in stack.processes if p.role == "processor" and p.popen.poll() is None)
    async with httpx.AsyncClient(base_url=processor.url, timeout=10) as http:
        for path in ("/router/", "/table/", "/graph/", "/stats/", "/performance/"):
            assert (await http.get(path)).status_code == 404, path
        assert (await http.get("/healthz")).status_code == 200
        assert "parley_processor" in (await http.get("/metrics")).text


async def test_gateway_metrics_move_to_their_own_address_when_one_is_set(stack: Stack) -> None:
    port = free_port()
    async with (
        extra_gateway(stack, PARLEY_METRICS_PORT=str(port)) as gateway,
        httpx.AsyncClient(timeout=10) as http,
    ):
        public = await http.get(f"{gateway.url}/metrics")
        assert public.status_code == 404
        private = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert private.status_code == 200 and "parley_gateway" in private.text


def test_the_deployment_ships_no_working_password() -> None:
    compose = (INFRA / "docker-compose.yml").read_text()
    assert "${POSTGRES_PASSWORD:?" in compose
    assert "POSTGRES_PASSWORD: parley" not in compose
    assert ":parley@" not in compose
