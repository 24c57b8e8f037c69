"""The web app in a real browser (Debian's Chromium, driven by Playwright) against a real
stack: Kafka, Postgres, a processor and two gateways of this module's own.

The stack is this module's so that its send limit can be low enough for a person to reach
(the shared stack lifts it for the load tests) and so that its gateways can be killed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright, expect

from parley.embedded.kafka import EmbeddedKafka
from parley.embedded.process import free_port
from schemas.settings import Settings
from tests.browser_pages import ChatPage, launch
from tests.conftest import Api
from tests.stack import Process, Stack, base_env
from topics.admin import ensure_topics

# Low enough to reach by typing; every test device sends far fewer (they each have a bucket).
SEND_BURST = 20
SEND_LIMITS = {"PARLEY_SEND_RATE_PER_S": "0.2", "PARLEY_SEND_BURST": str(SEND_BURST)}


@pytest.fixture(scope="module")
def web_stack(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("web-stack")
    with EmbeddedKafka(
        home / "kafka", free_port(), controller_port=free_port(), log_path=home / "kafka.log"
    ) as kafka:
        settings = Settings(
            kafka_bootstrap=kafka.bootstrap, postgres_dsn=postgres_dsn, data_dir=home / "data"
        )
        asyncio.run(ensure_topics(settings))
        env = {**base_env(kafka.bootstrap, postgres_dsn, home), **SEND_LIMITS}
        stack = Stack(home, env, settings)
        stack.start_processor()
        stack.start_gateway()
        stack.start_gateway()
        yield stack
        stack.stop_all()


def gateways(stack: Stack) -> list[Process]:
    return [p for p in stack.processes if p.role == "gateway" and p.popen.poll() is None]


@pytest.fixture
def web(web_stack: Stack) -> Process:
    """The gateway that serves the pages."""
    return gateways(web_stack)[0]


@pytest.fixture
async def web_api(web: Process) -> AsyncIterator[Api]:
    client = Api(web.url, web.ws_url)
    async with client:
        yield client


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "browser-artifacts"
    path.mkdir(exist_ok=True)
    print(f"browser screenshots: {path}")
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        yield browser
        await browser.close()


async def new_context(browser: Browser) -> BrowserContext:
    """A browser profile of its own: its own localStorage, so its own device."""
    return await browser.new_context(viewport={"width": 1100, "height": 700})


async def test_two_users_chat_and_a_third_tab_and_a_reload_keep_up(
    browser: Browser, web: Process, web_api: Api, artifacts: Path
) -> None:
    alice_name, bob_name = f"alice{uuid.uuid4().hex[:8]}", f"bob{uuid.uuid4().hex[:8]}"
    alice = await ChatPage.open(await new_context(browser), web.url, artifacts)
    bob = await ChatPage.open(await new_context(browser), web.url, artifacts)
    await alice.log_in(alice_name, sign_up=True)
    await bob.log_in(bob_name, sign_up=True)
    bob_id = (await bob.page.get_by_test_id("my-user-id").text_content() or "").split()[-1]

    # Friends: alice asks by bob's id, bob accepts; then each knows the other's name.
    await alice.page.get_by_role("button", name="Friends").click()
    await alice.page.get_by_label("Friend's user id").fill(bob_id)
    await alice.page.get_by_role("button", name="Send request").click()
    await expect(alice.page.get_by_test_id("friends-dialog")).to_contain_text("request sent")
    await alice.page.get_by_role("button", name="Close").click()
    await bob.page.get_by_role("button", name="Friends").click()
    friends = bob.page.get_by_test_id("friends-dialog")
    await expect(friends).to_contain_text(f"{alice_name} wants to be your friend")
    await friends.get_by_role("button", name="Accept").click()
    await expect(friends).to_contain_text(f"{alice_name} online")
    await friends.get_by_role("button", name="Close").click()

    await alice.start_direct(bob_name)  # a friend, so by username
    await expect(alice.page.locator("#chat-title")).to_have_text(bob_name)
    await alice.send("hello bob <b>not bold</b>")
    await expect(bob.channel(alice_name)).to_be_visible()  # the chat appears on bob's side
    await bob.open_chat(alice_name)
    # Presence of the people in the open chat.
    await expect(bob.page.get_by_test_id("chat-people")).to_have_text(f"{alice_name} (online)")
    await bob.send("hi alice")
    await alice.expect_texts(["hello bob <b>not bold</b>", "hi alice"])
    await alice.send("how are you?")
    expected = ["hello bob <b>not bold</b>", "hi alice", "how are you?"]
    await alice.expect_texts(expected)
    await bob.expect_texts(expected)
    # User text is text: the markup shows as typed, no element was made of it.
    await expect(bob.page.locator(".message .text b")).to_have_count(0)
    await alice.screenshot("two-users-alice")

    # A second tab of alice's is the same device with a socket of its own.
    tab = await ChatPage.open(alice.page.context, web.url, artifacts)
    await tab.online()
    await tab.open_chat(bob_name)
    await tab.expect_texts(expected)
    await bob.send("seen in every tab")
    expected.append("seen in every tab")
    for page in (alice, tab, bob):
        await page.expect_texts(expected)

    # A reload shows the history at once (from the cache) and then catches up.
    await bob.page.reload()
    await bob.online()
    await bob.open_chat(alice_name)
    await bob.expect_texts(expected)
    await alice.send("after the reload")
    expected.append("after the reload")
    await bob.expect_texts(expected)
    await tab.expect_texts(expected)
    await bob.screenshot("two-users-bob")
