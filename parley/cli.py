"""The `parley` command: run each role, or the whole stack for development."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from schemas.settings import Settings

DEV_CQL_PORT = 19042  # the embedded Cassandra of `parley dev --message-store scylla`
DEFAULT_URL = "http://127.0.0.1:8080"  # what `parley dev` serves
T = TypeVar("T")

app = typer.Typer(help="Parley chat backend.", no_args_is_help=True, add_completion=False)


def _settings(**overrides: object) -> Settings:
    base = Settings()
    return base.model_copy(update={k: v for k, v in overrides.items() if v is not None})


@app.command()
def dev(
    http_port: Annotated[int | None, typer.Option(help="Gateway HTTP/WebSocket port.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where Kafka, Postgres and Cassandra keep their data.")
    ] = None,
    gateways: Annotated[
        int, typer.Option(min=1, help="Gateway processes (ports from --http-port up).")
    ] = 1,
    processors: Annotated[
        int, typer.Option(min=1, help="Processor workers in one consumer group.")
    ] = 1,
    kafka: Annotated[
        str | None,
        typer.Option(help="Use this running Kafka (HOST:PORT) instead of the embedded one."),
    ] = None,
    message_store: Annotated[
        str | None,
        typer.Option(help="postgres (default) or scylla: a Scylla/Cassandra message store."),
    ] = None,
    scylla_hosts: Annotated[
        str | None,
        typer.Option(help="With scylla: this running cluster, not an embedded Cassandra."),
    ] = None,
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster",
            help="Three Kafka nodes (and, with scylla, three Cassandra nodes) on 127.0.0.1-3,"
            " everything replicated three times.",
        ),
    ] = False,
) -> None:
    """Run the whole stack on the embedded Kafka and Postgres."""
    from devstack.embedded.maven import JvmUnavailable
    from devstack.embedded.process import ServiceError
    from devstack.supervisor import run_dev

    logging.basicConfig(level=logging.WARNING)
    settings = _settings(
        http_port=http_port,
        data_dir=data_dir,
        kafka_bootstrap=kafka,
        message_store=message_store,
        scylla_hosts=scylla_hosts,
    )
    if settings.message_store not in ("postgres", "scylla"):
        raise typer.BadParameter("--message-store is postgres or scylla")
    embedded_cql = settings.message_store == "scylla" and scylla_hosts is None
    if embedded_cql and "PARLEY_SCYLLA_PORT" not in os.environ:
        settings = settings.model_copy(update={"scylla_port": DEV_CQL_PORT})
    try:
        run_dev(
            settings,
            gateways,
            processors,
            embedded_kafka=kafka is None,
            embedded_cql=embedded_cql,
            cluster=cluster,
        )
    except (JvmUnavailable, ServiceError) as exc:
        typer.echo(f"parley dev: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def gateway(
    http_port: Annotated[int | None, typer.Option(help="HTTP/WebSocket port.")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
) -> None:
    """Run a gateway (HTTP API and WebSocket endpoint)."""
    from gateway.server import serve
    from topics.admin import ensure_topics

    logging.basicConfig(level=logging.WARNING)
    settings = _settings(http_port=http_port, http_host=host)
    asyncio.run(ensure_topics(settings))
    serve(settings)


@app.command()
def processor() -> None:
    """Run a message processor worker (joins the processors' consumer group)."""
    from processors.app import run_worker
    from topics.admin import ensure_topics

    settings = _settings()
    asyncio.run(ensure_topics(settings))
    run_worker(settings)


@app.command()
def migrate() -> None:
    """Apply database migrations."""
    from storage.postgres.migrate import migrate as run

    settings = _settings()
    applied = asyncio.run(run(settings.postgres_dsn))
    typer.echo(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    if settings.message_store == "scylla":
        from storage.scylla import migrate_cluster

        asyncio.run(
            migrate_cluster(
                settings.scylla_host_list(),
                settings.scylla_port,
                settings.scylla_keyspace,
                replication_factor=settings.scylla_replication_factor,
            )
        )
        typer.echo(f"scylla keyspace {settings.scylla_keyspace} is up to date")


@app.command()
def topics() -> None:
    """Create Parley's topics on the broker (existing ones are left alone)."""
    from topics.admin import ensure_topics

    created = asyncio.run(ensure_topics(_settings()))
    typer.echo(f"created {len(created)} topic(s): {', '.join(created) or 'all exist'}")


@app.command()
def replay(
    search: Annotated[
        bool,
        typer.Option(
            "--search",
            help="Rebuild the search index instead: empty it, then read parley.stored.v1.",
        ),
    ] = False,
) -> None:
    """Rebuild the message store from the messages topic (same rows, same ids), or with
    --search the search index from the stored topic."""
    from tqdm import tqdm

    from processors.replay import replay as run
    from processors.search_rebuild import rebuild_search

    with tqdm(unit="event", desc="search" if search else "replay") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        count = asyncio.run((rebuild_search if search else run)(_settings(), progress))
    typer.echo(f"replayed {count} event(s)" + (" into the search index" if search else ""))


@app.command()
def tap(
    topic: Annotated[
        str, typer.Argument(help="Topic name, e.g. parley.messages.v1")
    ] = "parley.messages.v1",
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest event.")] = False,
    limit: Annotated[int | None, typer.Option(help="Stop after this many events.")] = None,
    follow: Annotated[bool, typer.Option(help="Keep waiting for new events at the end.")] = True,
) -> None:
    """Print a topic's events as JSON lines (for analytics pipelines)."""
    import sys

    from topics.tap import tap as run

    def emit(line: bytes) -> None:
        sys.stdout.buffer.write(line + b"\n")
        sys.stdout.buffer.flush()

    asyncio.run(run(_settings(), topic, emit, from_beginning, limit, follow))


@app.command()
def schemas() -> None:
    """Write the JSON Schema documents in schemas/json/ from the models."""
    from schemas.export import write

    for path in write():
        typer.echo(str(path))


@app.command(
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def bench(ctx: typer.Context) -> None:
    """Run the benchmarks (bench/, in a source checkout); options as `python -m bench --help`."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "bench" / "__main__.py").exists():
        raise typer.BadParameter("the benchmarks ship with the source tree: run from a checkout")
    raise typer.Exit(subprocess.call([sys.executable, "-m", "bench", *ctx.args], cwd=root))


# --- the terminal client: terminal/chat.py (chat) and terminal/oneshot.py (the rest) ------------

UrlOption = Annotated[
    str | None,
    typer.Option(
        envvar="PARLEY_URL",
        help=f"The gateway's HTTP address (default: the stored login's, else {DEFAULT_URL}).",
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(envvar="PARLEY_TOKEN", help="A device token, instead of the stored login."),
]
ChannelOption = Annotated[
    str, typer.Option("--channel", "-c", help="A channel id, a group's name or a username.")
]


def _client_command(command: str, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a client command; what the server or the user got wrong is one line on stderr and
    exit code 1, never a traceback."""
    try:
        import httpx

        from parley_client import ApiError, SessionError
        from parley_client.reconnecting import LoggedOut
        from terminal.credentials import NoCredentials
        from terminal.directory import NotFound
        from terminal.oneshot import CommandError
    except ModuleNotFoundError as exc:
        typer.echo(f"parley {command}: needs {exc.name}: pip install 'parley[terminal]'", err=True)
        raise typer.Exit(2) from None
    try:
        return asyncio.run(work())
    except (CommandError, NoCredentials, NotFound, LoggedOut) as exc:
        problem = str(exc)
    except ApiError as exc:
        problem = f"{exc.code or exc.status}: {exc.message}"
        if exc.code == "unauthorized":
            problem += " (log in again: `parley login`)"
    except SessionError as exc:
        problem = f"the connection failed: {exc.kind}: {exc.detail}"
    except httpx.TransportError as exc:
        problem = f"cannot reach the server: {exc or type(exc).__name__}"
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    typer.echo(f"parley {command}: {problem}", err=True)
    raise typer.Exit(1)


def _password() -> str:
    return os.environ.get("PARLEY_PASSWORD") or typer.prompt("Password", hide_input=True)


@app.command()
def login(
    url: UrlOption = None,
    username: Annotated[str | None, typer.Option(help="Prompted for if not given.")] = None,
) -> None:
    """Log in as a new device and store its token (password: prompt or PARLEY_PASSWORD)."""
    name = username or typer.prompt("Username")
    password = _password()

    async def work() -> Any:
        from terminal.oneshot import log_in

        return await log_in(url or DEFAULT_URL, name, password)

    stored = _client_command("login", work)
    typer.echo(f"logged in as {stored.username} on {stored.url}")


@app.command()
def logout() -> None:
    """Revoke the stored device's token and forget it."""

    async def work() -> str:
        from terminal.oneshot import log_out

        return await log_out()

    typer.echo(_client_command("logout", work))


@app.command()
def chat(
    url: UrlOption = None,
    username: Annotated[str | None, typer.Option(help="Log in as this user.")] = None,
) -> None:
    """The interactive terminal client: channels, history, live messages, presence."""

    async def run() -> None:
        from parley_client.reconnecting import SUSPENDED, LoggedOut
        from terminal import credentials
        from terminal.chat import chat as run_chat
        from terminal.oneshot import log_in

        try:
            me = credentials.load()
        except credentials.NoCredentials:
            me = None
        if me is None or (username and username != me.username) or (url and url != me.url):
            name = username or typer.prompt("Username")
            me = await log_in(url or DEFAULT_URL, name, _password())
        try:
            await run_chat(me)
        except LoggedOut as ended:
            credentials.forget()
            if str(ended) == SUSPENDED:
                raise LoggedOut(f"{me.username}: {SUSPENDED}") from None
            raise LoggedOut(
                f"{me.username}'s login on this machine no longer works: run `parley chat` again"
            ) from None

    _client_command("chat", run)


@app.command()
def send(
    channel: ChannelOption,
    text: Annotated[
        str | None, typer.Argument(help="The message (default: read from stdin).")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Send a message; prints its message_id once the server has accepted it."""
    if text is None:
        if sys.stdin.isatty():
            raise typer.BadParameter("give the text, or pipe it in", param_hint="TEXT")
        text = sys.stdin.read().removesuffix("\n")
    body = text

    async def work() -> str:
        from terminal.oneshot import send as run

        where, device = _device(url, token)
        return await run(where, device, channel, body)

    typer.echo(_client_command("send", work))


MessageOption = Annotated[str, typer.Option("--message", "-m", help="The message's id.")]


@app.command()
def edit(
    channel: ChannelOption,
    message: MessageOption,
    text: Annotated[str, typer.Argument(help="The new text.")],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Replace the text of one of your messages; prints the edit's id once accepted."""

    async def work() -> str:
        from terminal.oneshot import edit as run

        where, device = _device(url, token)
        return await run(where, device, channel, message, text)

    typer.echo(_client_command("edit", work))


@app.command()
def delete(
    channel: ChannelOption,
    message: MessageOption,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a message (yours, or any as a group's owner or admin); prints the delete's id."""

    async def work() -> str:
        from terminal.oneshot import delete as run

        where, device = _device(url, token)
        return await run(where, device, channel, message)

    typer.echo(_client_command("delete", work))


@app.command()
def history(
    channel: ChannelOption,
    before: Annotated[
        str | None, typer.Option(help="Only messages older than this message_id.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, max=100, help="At most N (50).")] = None,
    json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Print a page of a channel's messages, oldest first (the newest page by default)."""

    async def work() -> list[str]:
        from terminal.oneshot import history as run
        from terminal.rendering import json_line

        where, device = _device(url, token)
        messages, directory = await run(where, device, channel, before=before, limit=limit)
        if json:
            return [json_line(m) for m in messages]
        return [directory.line(m, with_id=True) for m in messages]

    for line in _client_command("history", work):
        typer.echo(line)


@app.command()
def search(
    words: Annotated[str, typer.Argument(help="What to look for: messages with every word.")],
    channel: Annotated[
        str | None,
        typer.Option("--channel", "-c", help="Only this channel (an id, a group or a username)."),
    ] = None,
    before: Annotated[
        str | None,
        typer.Option(help="Only results older than this message_id (a page's next one)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, max=100, help="At most N (20).")] = None,
    json: Annotated[bool, typer.Option("--json", help="One JSON result per line.")] = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Search your messages, newest first: each match in [brackets] (with --json, each result
    as the API gives it). When there are more, says on stderr what --before pages on."""

    async def work() -> tuple[list[str], str | None]:
        from terminal.oneshot import search as run
        from terminal.rendering import json_line

        where, device = _device(url, token)
        found, channels, directory = await run(
            where, device, words, channel=channel, before=before, limit=limit
        )
        if json:
            lines = [json_line(r) for r in found["results"]]
        else:
            lines = [directory.found(r, channels, with_id=True) for r in found["results"]]
        return lines, found["next_before"]

    lines, next_before = _client_command("search", work)
    for line in lines:
        typer.echo(line)
    if next_before is not None:
        typer.echo(f"parley search: more with --before {next_before}", err=True)


@app.command()
def invite(
    channel: ChannelOption,
    uses: Annotated[
        int | None, typer.Option(min=1, max=1000, help="How many may join with it (any).")
    ] = None,
    expires_in: Annotated[
        int | None,
        typer.Option(min=60, max=30 * 24 * 3600, help="Seconds it works for (until revoked)."),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Make an invite link to a group (its owners and admins); prints its code, shown this
    once: whoever has it joins with `parley join CODE` (or the web app's #join=CODE)."""

    async def work() -> str:
        from terminal.oneshot import invite as run

        where, device = _device(url, token)
        return await run(where, device, channel, uses=uses, expires_in_s=expires_in)

    typer.echo(_client_command("invite", work))


@app.command()
def join(
    link: Annotated[str, typer.Argument(help="An invite code, or the link that holds it.")],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Join a group with an invite link; prints the group's name and id."""

    async def work() -> str:
        from terminal.oneshot import join as run

        where, device = _device(url, token)
        return await run(where, device, link)

    typer.echo(_client_command("join", work))


@app.command()
def export(url: UrlOption = None, token: TokenOption = None) -> None:
    """Write your data to stdout as the server streams it, one JSON object a line: account,
    settings, devices, friends, blocks, channels, then the messages you sent, and `end`."""

    async def work() -> None:
        from terminal.oneshot import export as run

        where, device = _device(url, token)
        async for line in run(where, device):
            sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()

    _client_command("export", work)


def _device(url: str | None, token: str | None) -> tuple[str, Any]:
    """The gateway and the device a command acts as: `--token` if given, else the stored
    login (NoCredentials if there is none)."""
    from terminal import credentials
    from terminal.oneshot import Token

    if token:
        return url or DEFAULT_URL, Token(token)
    stored = credentials.load()
    return url or stored.url, stored


def main() -> None:
    # The embedded Postgres asks platformdirs for a runtime directory it does not use; in a
    # container without XDG_RUNTIME_DIR that warned on every start.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    app()


if __name__ == "__main__":
    main()
