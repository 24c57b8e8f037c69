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
from tests.conftest import Api, eventually
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


async def signed_in(browser: Browser, web: Process, artifacts: Path, username: str) -> ChatPage:
    """A new browser profile (a new device) logged in as `username`."""
    page = await ChatPage.open(await new_context(browser), web.url, artifacts)
    await page.log_in(username)
    return page


async def test_refusals_are_told_to_the_user(
    browser: Browser, web: Process, web_api: Api, artifacts: Path
) -> None:
    owner, member = await web_api.new_device("own"), await web_api.new_device("mem")
    await web_api.group(owner, [member.user_id], name="Refusals")
    alice = await signed_in(browser, web, artifacts, owner.username)
    bob = await signed_in(browser, web, artifacts, member.username)
    await alice.open_chat("Refusals")
    await bob.open_chat("Refusals")

    # 100,000 characters are a message, shown collapsed; one more is refused by the server.
    await alice.send("x" * 100_000)
    await expect(bob.messages).to_have_count(1)
    await bob.page.get_by_role("button", name="Show more").click()
    await expect(bob.page.get_by_role("button", name="Show less")).to_be_visible()
    assert await bob.messages.evaluate("e => e.textContent") == "x" * 100_000
    await alice.page.get_by_label("Message", exact=True).fill("y" * 100_001)
    await expect(alice.page.locator(".counter")).to_have_text("100,001 / 100,000")
    await alice.page.get_by_label("Message", exact=True).press("Enter")
    too_long = "Not sent: the message is too long (at most 100,000 characters)."
    await expect(alice.page.locator(".message.pending .send-error")).to_have_text(too_long)
    await expect(alice.notices).to_have_text(too_long)
    await alice.page.get_by_role("button", name="Discard").click()
    await expect(alice.page.locator(".message")).to_have_count(1)  # the refused one is gone
    await expect(alice.page.locator(".message.pending")).to_have_count(0)

    # A plain member may not remove the owner: the server's refusal is shown.
    await bob.page.get_by_role("button", name="Members").click()
    members = bob.page.get_by_test_id("members-dialog")
    await members.locator(f'li[data-user-id="{owner.user_id}"]').get_by_role("button").click()
    await expect(members.get_by_role("alert")).to_contain_text("not allowed")
    await members.get_by_role("button", name="Close").click()

    # Removed from the group, bob's next send is refused.
    await alice.page.get_by_role("button", name="Members").click()
    members = alice.page.get_by_test_id("members-dialog")
    await members.locator(f'li[data-user-id="{member.user_id}"]').get_by_role("button").click()
    await expect(members.locator(f'li[data-user-id="{member.user_id}"]')).to_have_count(0)
    await members.get_by_role("button", name="Close").click()
    await bob.send("still here?")
    not_member = "Not sent: you are not a member of this chat any more."
    await expect(bob.page.locator(".message.pending .send-error")).to_have_text(not_member)
    await bob.screenshot("refused-not-member")

    # Past the send limit: the sends over it are refused, and can be retried later.
    await alice.send("burst")  # the 100,000-character one took a token too
    for i in range(SEND_BURST + 10):  # the bucket refills a little meanwhile
        await alice.send(f"fast {i}")
    rate_limited = "Not sent: you are sending too fast. Wait a moment and retry."
    await expect(alice.page.locator(".send-error").first).to_have_text(rate_limited)
    await expect(alice.page.get_by_role("button", name="Retry").first).to_be_visible()
    await alice.screenshot("refused-rate-limited")


async def test_a_device_logged_out_elsewhere_is_sent_back_to_log_in(
    browser: Browser, web: Process, web_api: Api, artifacts: Path
) -> None:
    username = await web_api.new_user("out")
    laptop = await signed_in(browser, web, artifacts, username)
    phone = await signed_in(browser, web, artifacts, username)

    await phone.page.get_by_role("button", name="Devices").click()
    devices = phone.page.get_by_test_id("devices-dialog")
    await expect(devices.locator("li")).to_have_count(2)
    await expect(devices.locator("li", has_text="this browser")).to_have_count(1)
    await devices.locator("li", has_not_text="this browser").get_by_role("button").click()
    await expect(devices.locator("li")).to_have_count(1)

    await expect(laptop.page.get_by_role("alert")).to_have_text(
        "This device was logged out. Log in again."
    )
    await expect(laptop.page.get_by_role("button", name="Log in")).to_be_visible()
    await laptop.screenshot("logged-out-elsewhere")
    await phone.online()  # the other device is untouched


async def test_history_scrolls_back_and_jumps_to_a_message(
    browser: Browser, web: Process, web_api: Api, artifacts: Path
) -> None:
    carol, dave = await web_api.new_device("carol"), await web_api.new_device("dave")
    channel = await web_api.direct(carol, dave.user_id)
    texts = [f"m{i}" for i in range(60)]  # more than a page (50)
    for start in range(0, 60, SEND_BURST):  # a device per burst of the send limit
        device = await web_api.add_device(carol.username)
        async with await web_api.connect(device) as socket:
            for text in texts[start : start + SEND_BURST]:
                await socket.accepted(await socket.send_message(channel, text))

    async def stored() -> bool:  # accepted is in the log; the store follows
        return len(await web_api.all_history(carol, channel)) == 60

    await eventually(stored, 30, "the 60 messages stored")
    ids = [m["message_id"] for m in await web_api.all_history(carol, channel)]

    page = await signed_in(browser, web, artifacts, dave.username)
    await page.channel(f"user …{carol.user_id[-6:]}").click()
    await expect(page.messages).to_have_text(texts[10:])
    await page.page.get_by_test_id("messages").evaluate("e => e.parentElement.scrollTop = 0")
    await expect(page.messages).to_have_text(texts)
    await expect(page.page.get_by_role("button", name="Load older messages")).to_be_hidden()

    jump = await ChatPage.open(await new_context(browser), f"{web.url}/", artifacts)
    await jump.log_in(dave.username)
    await jump.page.goto(f"{web.url}/#channel={channel}&message={ids[5]}")
    await expect(jump.page.locator(".message.highlight .text")).to_have_text("m5")
    await expect(jump.page.locator(".message.highlight")).to_be_in_viewport()
    await jump.page.get_by_role("button", name="Jump to latest").click()
    await expect(jump.messages.last).to_have_text("m59")
    await jump.screenshot("jumped")


async def test_a_killed_gateway_loses_nothing_and_duplicates_nothing(
    browser: Browser, web_stack: Stack, web: Process, web_api: Api, artifacts: Path
) -> None:
    alice, bob = await web_api.new_device("alice"), await web_api.new_device("bob")
    channel = await web_api.direct(bob, alice.user_id)
    page = await signed_in(browser, web, artifacts, alice.username)
    await page.channel(f"user …{bob.user_id[-6:]}").click()
    await page.send("before")
    await page.expect_texts(["before"])

    # Every gateway dies, the one that served the page included.
    ports = [g.port for g in gateways(web_stack)]
    for gateway in gateways(web_stack):
        gateway.kill()
    await expect(page.connection).to_have_attribute("data-state", "reconnecting")
    await page.send("while away 1")
    await page.send("while away 2")
    # Bob goes on talking through a new gateway.
    other = await asyncio.to_thread(web_stack.start_gateway)
    async with await web_api.connect(bob, url=other.ws_url) as socket:
        for text in ("from bob 1", "from bob 2", "from bob 3"):
            await socket.accepted(await socket.send_message(channel, text))
        await page.screenshot("reconnecting")
        # The page's own gateway comes back; the page resyncs and resends.
        for port in ports:
            await asyncio.to_thread(web_stack.start_gateway, port)
        await page.online()
        expected = ["before", "from bob 1", "from bob 2", "from bob 3"]
        expected += ["while away 1", "while away 2"]
        await page.expect_texts(expected)
        got = await socket.collect_messages(channel, 6)
        assert [m["text"] for m in got] == ["before", *expected[1:]]
    await page.page.reload()
    await page.online()
    await page.channel(f"user …{bob.user_id[-6:]}").click()
    await page.expect_texts(expected)
    other.stop()


async def test_unread_counts_fall_when_another_tab_reads(
    browser: Browser, web: Process, web_api: Api, artifacts: Path
) -> None:
    alice, bob = await web_api.new_device("alice"), await web_api.new_device("bob")
    channel = await web_api.direct(bob, alice.user_id)
    page = await signed_in(browser, web, artifacts, alice.username)
    chat = page.channel(f"user …{bob.user_id[-6:]}")
    async with await web_api.connect(bob) as socket:
        for text in ("one", "two"):
            await socket.accepted(await socket.send_message(channel, text))
    await expect(chat.get_by_test_id("unread")).to_have_text("2")  # live, no chat open
    await page.page.reload()
    await page.online()
    await expect(chat.get_by_test_id("unread")).to_have_text("2")  # from the server

    reader = await ChatPage.open(page.page.context, web.url, artifacts)
    await reader.online()
    await reader.channel(f"user …{bob.user_id[-6:]}").click()
    await reader.expect_texts(["one", "two"])
    await expect(chat.get_by_test_id("unread")).to_have_count(0)  # read in the other tab
    await page.screenshot("read-elsewhere")
