"""Search (issue #15): how soon a sent message is searchable through the live stack, and what
queries cost over a large index, bulk-loaded through Parley's own `SearchIndex` into a
database of its own (a million messages through the stack would take hours here). Described
once, in bench/README.md ("What each scenario measures", 9)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable

from bench.harness import histograms
from bench.harness.context import Context
from bench.harness.progress import bar as progress_bar
from bench.harness.results import QueryRow, SearchResults

POLL_S = 0.01
CHANNEL_MESSAGES = 1_000  # messages per channel of the bulk load
BATCH = 2_000  # messages per SearchIndex.add of the bulk load
VOCABULARY = 20_000  # English-like words, Zipf-distributed
HANGUL = "가나다라마바사아자차카타파하한국어공부음식친구회사학교사랑시간오늘내일"
KANA_KANJI = "東京大阪日本語学校会社電車駅時間今日明日友達映画音楽食事旅行あいうえおかきくけこ"
HANZI = "北京上海中国人民天安门学生老师朋友工作时间今天明天电影音乐吃饭旅游"
EMOJI = "🎉👍😀🙏🔥❤🚀🍕🎶☕"


async def run_search(ctx: Context) -> None:
    cfg = ctx.cfg
    out = ctx.results.search = SearchResults(
        cfg.search_lag_messages, cfg.search_lag_rate, cfg.search_messages
    )
    await _lag(ctx, out)
    dsn = ctx.stack.postgres_dsn()
    if dsn is None:
        ctx.results.notes.append("search: no Postgres of the bench's own; queries not measured")
        return
    await _queries(ctx, dsn, out)


async def _lag(ctx: Context, out: SearchResults) -> None:
    sender, reader = ctx.users[0], ctx.users[1]
    channel = (await ctx.directs([(sender, reader)]))[0]
    socket = await ctx.api.connect(sender, url=ctx.ws_url)
    lags_us: list[int] = []
    missing = 0
    try:
        interval = 1.0 / ctx.cfg.search_lag_rate

        async def one(i: int) -> None:
            nonlocal missing
            word = f"lag{uuid.uuid4().hex[:12]}"
            started = time.perf_counter()
            await socket.send_message(channel, f"{word} message {i} 검색 🎉")
            deadline = started + 30.0
            while time.perf_counter() < deadline:
                response = await ctx.api.request(
                    "GET", "/v1/search", auth=reader, params={"q": word, "channel_id": channel}
                )
                if response.status_code == 200 and response.json()["results"]:
                    lags_us.append(round((time.perf_counter() - started) * 1e6))
                    return
                await asyncio.sleep(POLL_S)  # the poll's period: the figures' resolution
            missing += 1

        tasks = []
        begun = time.perf_counter()
        with progress_bar(ctx.cfg.search_lag_messages, "search lag", "msg") as bar:
            for i in range(ctx.cfg.search_lag_messages):
                await asyncio.sleep(max(0.0, begun + i * interval - time.perf_counter()))
                task = asyncio.create_task(one(i))
                task.add_done_callback(lambda _: bar.update(1))
                tasks.append(task)
            await asyncio.gather(*tasks)
    finally:
        await socket.close()
    out.lag_ms = histograms.summary(histograms.of(lags_us))
    out.lag_missing = missing


def _corpus(seed: int) -> Callable[[int], str]:
    """A text maker: mostly English-like words (Zipf), with Korean, Japanese, Chinese and emoji
    in some messages, and some messages in each of those scripts alone."""
    rng = random.Random(seed)
    weights = [1.0 / (rank + 1) for rank in range(VOCABULARY)]
    words = [f"{_word(rng)}" for _ in range(VOCABULARY)]
    picks = rng.choices(words, weights, k=200_000)

    def run(alphabet: str, n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    def text(i: int) -> str:
        kind = rng.randrange(10)  # not from i: each channel gets every kind
        english = " ".join(picks[(i * 7 + j) % len(picks)] for j in range(rng.randint(4, 14)))
        if kind == 0:
            return f"{run(HANGUL, 6)} {run(HANGUL, 4)} {run(HANGUL, 5)}"
        if kind == 1:
            return run(KANA_KANJI, 14)
        if kind == 2:
            return run(HANZI, 12)
        if kind == 3:
            return f"{english} {rng.choice(EMOJI)}"
        if kind == 4:
            return f"{english} {run(KANA_KANJI, 4)} {run(HANGUL, 3)}"
        return english

    return text


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))


async def _queries(ctx: Context, server_dsn: str, out: SearchResults) -> None:
    import psycopg

    from schemas.ids import iso_ms
    from schemas.message import Message
    from schemas.settings import Settings
    from storage.postgres.migrate import migrate
    from storage.postgres.pool import open_pool
    from storage.postgres.search import PostgresSearchIndex
    from storage.protocols import SearchScope, SearchTooCostly

    cfg = ctx.cfg
    name = f"bench_search_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(server_dsn, autocommit=True) as conn:
        await conn.execute(f"CREATE DATABASE {name}".encode())
    dsn = server_dsn.replace("/postgres?", f"/{name}?")
    try:
        await migrate(dsn)
        pool = await open_pool(Settings(postgres_dsn=dsn, postgres_pool_max=4))
        try:
            index = PostgresSearchIndex(pool)
            text = _corpus(15)
            channels = max(cfg.search_messages // CHANNEL_MESSAGES, 1)
            base = 250_000_000_000_000_000
            started = time.perf_counter()
            with progress_bar(cfg.search_messages, "search index load", "msg") as bar:
                for start in range(0, cfg.search_messages, BATCH):
                    batch = [
                        Message(
                            channel_id=str(1_000_000 + i % channels),
                            message_id=base + i,
                            sender_id="1",
                            sender_device_id="2",
                            client_msg_id=f"b{i}",
                            text=text(i),
                            sent_at=iso_ms(1_767_225_600_000 + i),
                        )
                        for i in range(start, min(start + BATCH, cfg.search_messages))
                    ]
                    await index.add(batch)
                    bar.update(len(batch))
            out.load_s = round(time.perf_counter() - started, 1)
            out.load_msgs_per_s = round(cfg.search_messages / max(out.load_s, 1e-9))
            async with pool.connection() as conn:
                await conn.execute("ANALYZE search_entries")
                cur = await conn.execute("SELECT pg_total_relation_size('search_entries')")
                row = await cur.fetchone()
                assert row is not None
                out.index_bytes_per_message = round(int(str(row[0])) / cfg.search_messages, 1)

            rng = random.Random(99)
            samples = [text(rng.randrange(cfg.search_messages)) for _ in range(5_000)]
            english = [t.split() for t in samples if t.isascii()]
            by_count: dict[str, int] = {}
            for words in english:
                for w in words:
                    by_count[w] = by_count.get(w, 0) + 1
            ranked = sorted(by_count, key=lambda w: -by_count[w])
            common, rare = ranked[:20], ranked[len(ranked) // 2 :]

            def cjk(alphabet: str) -> Callable[[], str]:
                return lambda: "".join(rng.choice(alphabet) for _ in range(2))

            kinds: dict[str, Callable[[], str]] = {
                "rare word": lambda: rng.choice(rare),
                "common word": lambda: rng.choice(common),
                "two words": lambda: f"{rng.choice(common)} {rng.choice(rare)}",
                "Korean, 2 syllables": cjk(HANGUL),
                "Japanese, 2 characters": cjk(KANA_KANJI),
                "Chinese, 2 characters": cjk(HANZI),
                "emoji": lambda: rng.choice(EMOJI),
            }
            member = [
                SearchScope(str(1_000_000 + c), 0)
                for c in range(0, channels, max(channels // cfg.search_member_channels, 1))
            ][: cfg.search_member_channels]
            everyone = [SearchScope(str(1_000_000 + c), 0) for c in range(channels)]
            for who, scopes in (
                (f"in {len(member)} channels", member),
                (f"in all {len(everyone)} channels", everyone),
                ("one channel", member[:1]),
            ):
                for kind, make in kinds.items():
                    if who == "one channel" and kind not in ("rare word", "common word"):
                        continue
                    times_us: list[int] = []
                    hits = costly = 0
                    for _ in range(cfg.search_queries):
                        q = make()
                        began = time.perf_counter()
                        try:
                            page = await index.search(q, scopes, before=None, limit=20)
                            hits += len(page.messages)
                        except SearchTooCostly:
                            costly += 1
                        times_us.append(round((time.perf_counter() - began) * 1e6))
                    s = histograms.summary(histograms.of(times_us))
                    out.queries.append(
                        QueryRow(
                            who,
                            kind,
                            len(scopes) * CHANNEL_MESSAGES,
                            s.count,
                            s.p50,
                            s.p99,
                            s.max,
                            round(hits / max(s.count, 1), 1),
                            costly,
                        )
                    )
        finally:
            await pool.close()
    finally:
        async with await psycopg.AsyncConnection.connect(server_dsn, autocommit=True) as conn:
            await conn.execute(f"DROP DATABASE IF EXISTS {name}".encode())
