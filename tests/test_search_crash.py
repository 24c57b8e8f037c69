"""A processor killed with SIGKILL mid-stream loses nothing from the search index and doubles
nothing in it: its successor indexes what the killed worker had not, from the last commit."""

from __future__ import annotations

import asyncio

from tests.conftest import Api, eventually, metric
from tests.stack import Stack

TOTAL = 400
INDEXED = "parley_processor_messages_indexed_total"


async def test_processor_sigkill_mid_stream_every_message_is_searchable_once(
    api: Api, stack: Stack
) -> None:
    sender, reader = await api.new_device("sk_s"), await api.new_device("sk_r")
    channel = await api.direct(sender, reader.user_id)
    s = await api.connect(sender)
    processor = next(p for p in stack.processes if p.role == "processor" and p.popen.poll() is None)
    word = "crashsearch"

    async def send(numbers: range) -> None:
        for i in numbers:
            await s.send_message(channel, f"{word} {i} 검색", client_msg_id=f"sk-{i}")
            await asyncio.sleep(0.004)  # pacing: a stream of sends, not one burst

    half = TOTAL // 2
    await send(range(half))

    async def indexing() -> bool:
        return await metric(processor.url, INDEXED) > 0

    await eventually(indexing, 30, "the worker to index messages")
    await asyncio.to_thread(processor.kill)
    restarting = asyncio.create_task(asyncio.to_thread(stack.start_processor))
    await send(range(half, TOTAL))
    restarted = await restarting
    await s.collect_messages(channel, TOTAL, timeout_s=90)

    async def found() -> list[dict[str, str]]:
        results: list[dict[str, str]] = []
        params: dict[str, str | int] = {"q": f"{word} 검색", "channel_id": channel, "limit": 100}
        while True:
            response = await api.request("GET", "/v1/search", auth=reader, params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            results += [r["message"] for r in body["results"]]
            if body["next_before"] is None:
                return results
            params["before"] = body["next_before"]

    async def complete() -> bool:
        return len(await found()) >= TOTAL

    await eventually(complete, 60, "every message to be searchable")
    history = await api.all_history(reader, channel)
    assert len(history) == TOTAL
    # Exactly the stored messages, each once, newest first, as history has them.
    assert await found() == list(reversed(history))
    # The successor indexed at least what was sent after the kill: the kill was mid-stream.
    assert await metric(restarted.url, INDEXED) >= TOTAL - half
