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
from playwright.async_api import Browser, expect

from devstack.embedded.kafka import EmbeddedKafka
from devstack.embedded.process import free_port
from schemas.settings import Settings
from tests.browser_pages import ChatPage, new_context, signed_in
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
    await alice.page.get_by_label("Friend's username or user id").fill(bob_id)
    await alice.page.get_by_role("button", name="Send request").click()
    await expect(alice.page.get_by_test_id("friends-dialog")).to_contain_text("request sent")
    await alice.page.get_by_role("button", name="Close").click()
    await bob.page.get_by_role("button", name="Friends").click()
    friends = bob.page.get_by_test_id("friends-dialog")
    await expect(friends).to_contain_text(f"{alice_name} wants to be your friend")
    await friends.get_by_role("button", name="Accept").click()
    await expect(friends).to_contain_text(f"{alice_name} online")
    await friends.get_by_role("button", name="Close").click()

    await alice.start_direct(bob_name)  # by username
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


async def test_refusals_are_told_to_the_user(
    browser: Browser, web: Process, web_api: Api, artifacts: Path
) -> None:
    owner, member = await web_api.new_device("own"), await web_api.new_device("mem")
    await web_api.group(owner, [member.user_id], name="Refusals")
    alice = await signed_in(browser, web.url, artifacts, owner.username)
    bob = await signed_in(browser, web.url, artifacts, member.username)
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
    laptop = await signed_in(browser, web.url, artifacts, username)
    phone = await signed_in(browser, web.url, artifacts, username)

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

    page = await signed_in(browser, web.url, artifacts, dave.username)
    await page.channel(carol.username).click()
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
    page = await signed_in(browser, web.url, artifacts, alice.username)
    await page.channel(bob.username).click()
    await page.send("before")
    await page.expect_texts(["before"])

    # Every gateway dies, the one that served the page included.
    ports = [g.port for g in gateways(web_stack)]
    for gateway in gateways(web_stack):
        gateway.kill()
    await expect(page.connection).to_have_attribute("data-state", "reconnecting")
    await page.send("while away 1")
    await page.react(page.message("before"), "🎉")  # a change waits in the outbox too
    await expect(page.message("before").locator(".send-status")).to_have_text("Reacting…")
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
        await expect(page.message("before").locator(".chip")).to_have_text(["🎉 1"])
        await expect(page.message("before").locator(".send-status")).to_have_count(0)
        reaction = await socket.until(lambda f: f["type"] == "reaction")
        assert (reaction["target_id"], reaction["emoji"]) == (got[0]["message_id"], "🎉")
    await page.page.reload()
    await page.online()
    await page.channel(bob.username).click()
    await page.expect_texts(expected)
    await expect(page.message("before").locator(".chip")).to_have_text(["🎉 1"])
    other.stop()


async def test_unread_counts_fall_when_another_tab_reads(
    browser: Browser, web: Process, web_api: Api, artifacts: Path
) -> None:
    alice, bob = await web_api.new_device("alice"), await web_api.new_device("bob")
    channel = await web_api.direct(bob, alice.user_id)
    page = await signed_in(browser, web.url, artifacts, alice.username)
    chat = page.channel(bob.username)
    async with await web_api.connect(bob) as socket:
        for text in ("one", "two"):
            await socket.accepted(await socket.send_message(channel, text))
    await expect(chat.get_by_test_id("unread")).to_have_text("2")  # live, no chat open
    await page.page.reload()
    await page.online()
    await expect(chat.get_by_test_id("unread")).to_have_text("2")  # from the server

    reader = await ChatPage.open(page.page.context, web.url, artifacts)
    await reader.online()
    await reader.channel(bob.username).click()
    await reader.expect_texts(["one", "two"])
    await expect(chat.get_by_test_id("unread")).to_have_count(0)  # read in the other tab
    await page.screenshot("read-elsewhere")


async def test_people_are_found_by_username_and_see_each_other_typing(
    browser: Browser, web: Process, web_api: Api, artifacts: Path
) -> None:
    erin, frank = await web_api.new_device("erin"), await web_api.new_device("frank")
    alice = await signed_in(browser, web.url, artifacts, erin.username)
    bob = await signed_in(browser, web.url, artifacts, frank.username)

    # A direct chat by username, with someone who is not a friend; an unknown name is told.
    await alice.start_direct("nobody-" + uuid.uuid4().hex[:8])
    await expect(alice.page.get_by_role("navigation").get_by_role("alert")).to_contain_text(
        "No user is called"
    )
    await alice.start_direct(frank.username)
    await expect(alice.page.locator("#chat-title")).to_have_text(frank.username)
    await alice.send("hello by name")
    # Bob befriends alice by username, and from then on knows her name.
    await bob.page.get_by_role("button", name="Friends").click()
    friends = bob.page.get_by_test_id("friends-dialog")
    await friends.get_by_label("Friend's username or user id").fill(erin.username)
    await friends.get_by_role("button", name="Send request").click()
    await expect(friends).to_contain_text(f"{erin.username} request sent")
    await friends.get_by_role("button", name="Close").click()
    await bob.open_chat(erin.username)
    await bob.expect_texts(["hello by name"])

    # Typing shows on the other side, and goes once it expires...
    await alice.composer.fill("I am wri")
    await expect(bob.typing).to_have_text(f"{erin.username} is typing…")
    await expect(bob.typing).to_have_text("")
    await expect(alice.typing).to_have_text("")  # nobody else typed
    # ... or at once when that person's message arrives.
    await alice.composer.fill("I am writing again")
    await expect(bob.typing).to_have_text(f"{erin.username} is typing…")
    await alice.composer.press("Enter")
    await bob.expect_texts(["hello by name", "I am writing again"])
    await expect(bob.typing).to_have_text("", timeout=1000)  # cleared with the message itself
    await bob.screenshot("typing-cleared")


async def test_read_receipts_show_who_has_seen_and_follow_the_setting(
    browser: Browser, web: Process, web_api: Api, artifacts: Path
) -> None:
    owner, reader = await web_api.new_device("owner"), await web_api.new_device("reader")
    carol = await web_api.new_device("carol")
    alice = await signed_in(browser, web.url, artifacts, owner.username)
    bob = await signed_in(browser, web.url, artifacts, reader.username)

    # A group of people named by username; carol is added by username afterwards.
    await alice.page.get_by_role("button", name="New group").click()
    await alice.page.locator("#group-name").fill("Receipts")
    await alice.page.locator("#group-members").fill(reader.username)
    await alice.page.get_by_role("button", name="Create group").click()
    await expect(alice.page.locator("#chat-title")).to_have_text("Receipts")
    await alice.page.get_by_role("button", name="Members").click()
    members = alice.page.get_by_test_id("members-dialog")
    await members.get_by_label("Add member").fill(carol.username)
    await members.get_by_role("button", name="Add", exact=True).click()
    await expect(members.locator("li", has_text=f"@{carol.username}")).to_have_count(1)
    await members.get_by_role("button", name="Close").click()

    await alice.send("first")
    await alice.expect_texts(["first"])
    await bob.open_chat("Receipts")
    await bob.expect_texts(["first"])
    await expect(alice.message("first").locator(".seen-by")).to_have_text(
        f"Seen by {reader.username}"
    )
    # Nobody is "seen by" themself, nor under their own message (alice read hers).
    await expect(bob.page.locator(".seen-by:visible")).to_have_count(0)

    # Bob stops sharing: his later reads are his own.
    await bob.page.get_by_role("button", name="Settings").click()
    settings = bob.page.get_by_test_id("settings-dialog")
    await settings.get_by_label("Share read receipts").uncheck()
    await expect(settings.get_by_role("status")).to_have_text("Saved.")
    await settings.get_by_role("button", name="Close").click()
    await alice.send("second")
    await bob.expect_texts(["first", "second"])
    channel = next(c for c in await web_api.channels(owner) if c.get("name") == "Receipts")
    second = (await web_api.all_history(owner, channel["channel_id"]))[-1]["message_id"]

    async def bob_read_it() -> bool:
        got = await web_api.channels(reader)
        return any(c.get("read_message_id") == second for c in got)

    await eventually(bob_read_it, 20, "bob's read marker at the second message")
    # Carol reads after him, sharing: her receipt comes through the same relay, after his.
    async with await web_api.connect(carol) as socket:
        await socket.read(channel["channel_id"], second)
        await expect(alice.message("second").locator(".seen-by")).to_have_text(
            f"Seen by {carol.username}"
        )
    await expect(alice.message("first").locator(".seen-by")).to_have_text(
        f"Seen by {reader.username}"
    )
    await alice.screenshot("receipts")


async def test_who_may_add_me_to_groups_is_a_setting_and_a_refusal_says_why(
    browser: Browser, web: Process, web_api: Api, artifacts: Path
) -> None:
    owner = await web_api.new_device("owner")
    stranger = await web_api.new_device("stranger", group_adds=None)  # friends only
    alice = await signed_in(browser, web.url, artifacts, owner.username)
    carol = await signed_in(browser, web.url, artifacts, stranger.username)

    await alice.page.get_by_role("button", name="New group").click()
    dialog = alice.page.get_by_test_id("group-dialog")
    await alice.page.locator("#group-name").fill("Strangers")
    await alice.page.locator("#group-members").fill(stranger.username)
    await alice.page.get_by_role("button", name="Create group").click()
    await expect(dialog.get_by_role("alert")).to_have_text(
        f"not added, by their choice: user {stranger.user_id}:"
        " only their friends may add them to groups"
    )
    await alice.screenshot("group-add-not-allowed")

    # Carol lets everyone add her: the same request goes through.
    await carol.page.get_by_role("button", name="Settings").click()
    settings = carol.page.get_by_test_id("settings-dialog")
    await expect(settings.get_by_label("Who can add me to groups")).to_have_value("friends")
    await settings.get_by_label("Who can add me to groups").select_option("everyone")
    await expect(settings.get_by_role("status")).to_have_text("Saved.")
    assert (await web_api.settings(stranger))["group_adds"] == "everyone"
    await alice.page.get_by_role("button", name="Create group").click()
    await expect(alice.page.locator("#chat-title")).to_have_text("Strangers")


async def test_edits_deletes_and_reactions_show_on_both_sides_and_after_a_reload(
    browser: Browser, web: Process, web_api: Api, artifacts: Path
) -> None:
    owner, member = await web_api.new_device("owner"), await web_api.new_device("member")
    await web_api.group(owner, [member.user_id], name="Changes")
    alice = await signed_in(browser, web.url, artifacts, owner.username)
    bob = await signed_in(browser, web.url, artifacts, member.username)
    await alice.open_chat("Changes")
    await bob.open_chat("Changes")
    for text in ("typo heer", "regret this", "keep this"):
        await alice.send(text)
    await bob.send("from bob")
    expected = ["typo heer", "regret this", "keep this", "from bob"]
    await alice.expect_texts(expected)
    await bob.expect_texts(expected)

    # Who may do what: bob (a plain member) edits and deletes only his own; alice owns the group.
    theirs = bob.message("typo heer")
    await expect(theirs.get_by_role("button", name="Delete")).to_have_count(0)
    await expect(theirs.get_by_role("button", name="Edit")).to_have_count(0)
    await expect(bob.message("from bob").get_by_role("button", name="Delete")).to_have_count(1)
    await expect(alice.message("from bob").get_by_role("button", name="Delete")).to_have_count(1)
    await expect(alice.message("from bob").get_by_role("button", name="Edit")).to_have_count(0)

    # An edit: the new text and "(edited …)" on both sides.
    await alice.message("typo heer").get_by_role("button", name="Edit").click()
    await expect(alice.composer).to_have_value("typo heer")
    await alice.composer.fill("typo here")
    await alice.composer.press("Enter")
    expected[0] = "typo here"
    for page in (alice, bob):
        await page.expect_texts(expected)
        await expect(page.message("typo here").locator(".edited")).to_contain_text("(edited ")

    # A delete: a tombstone on both sides, with no actions left on it.
    regret = alice.message("regret this")
    await regret.get_by_role("button", name="Delete").click()
    await regret.get_by_role("button", name="Confirm delete").click()
    del expected[1]
    for page in (alice, bob):
        await page.expect_texts(expected)
        await expect(page.page.locator(".message .tombstone")).to_have_text(["message deleted"])
        await expect(page.page.locator('.message[data-state="deleted"] button')).to_have_count(0)

    # Reactions: counts on both sides; a second click takes one's own back.
    await bob.react(bob.message("keep this"), "👍")
    await expect(alice.message("keep this").locator(".chip")).to_have_text(["👍 1"])
    await alice.message("keep this").get_by_role("button", name="👍 1").click()
    for page in (alice, bob):
        await expect(page.message("keep this").locator(".chip")).to_have_text(["👍 2"])
    await bob.react(bob.message("keep this"), "🎉")
    await bob.message("keep this").get_by_role("button", name="👍 2").click()
    for page in (alice, bob):
        await expect(page.message("keep this").locator(".chip")).to_have_text(["👍 1", "🎉 1"])
    await expect(bob.message("keep this").locator('.chip[aria-pressed="true"]')).to_have_text(
        ["🎉 1"]
    )
    await bob.screenshot("changes-bob")

    # After a reload (from the cache, then the sync), and in a new browser (from history).
    await bob.page.reload()
    await bob.online()
    await bob.open_chat("Changes")
    fresh = await signed_in(browser, web.url, artifacts, member.username)
    await fresh.open_chat("Changes")
    for page in (bob, fresh):
        await page.expect_texts(expected)
        await expect(page.message("typo here").locator(".edited")).to_contain_text("(edited ")
        await expect(page.page.locator(".message .tombstone")).to_have_text(["message deleted"])
        await expect(page.message("keep this").locator(".chip")).to_have_text(["👍 1", "🎉 1"])

    # An edit over the limit is refused, and the message keeps its text.
    await alice.message("keep this").get_by_role("button", name="Edit").click()
    await alice.composer.fill("z" * 100_001)
    await alice.composer.press("Enter")
    too_long = "Edit not saved: the text is too long (at most 100,000 characters)."
    await expect(alice.message("keep this").locator(".send-error")).to_contain_text(too_long)
    await expect(alice.notices).to_have_text(too_long)
    await alice.message("keep this").get_by_role("button", name="Dismiss").click()
    await expect(alice.page.locator(".send-error")).to_have_count(0)
    await alice.expect_texts(expected)
    # Bob's typing may reach alice after his message (another path): it is not shown then.
    await expect(alice.typing).to_have_text("", timeout=1000)
    await alice.screenshot("changes-alice")


async def test_a_change_the_server_refuses_is_told_under_its_message(
    browser: Browser, web: Process, web_api: Api, artifacts: Path
) -> None:
    owner, admin = await web_api.new_device("owner"), await web_api.new_device("admin")
    member = await web_api.new_device("member")
    channel = await web_api.group(owner, [admin.user_id, member.user_id], name="Stale")
    await web_api.set_role(owner, channel, admin.user_id, "admin")
    async with await web_api.connect(member) as socket:
        await socket.accepted(await socket.send_message(channel, "by the member"))
    async with await web_api.connect(admin) as socket:
        await socket.accepted(await socket.send_message(channel, "by the admin"))
    page = await signed_in(browser, web.url, artifacts, admin.username)
    await page.open_chat("Stale")
    await page.expect_texts(["by the member", "by the admin"])

    # Made a plain member behind the page's back: the delete it still offers is refused.
    await web_api.set_role(owner, channel, admin.user_id, "member")
    theirs = page.message("by the member")
    await theirs.get_by_role("button", name="Delete").click()
    await theirs.get_by_role("button", name="Confirm delete").click()
    await expect(theirs.locator(".send-error")).to_contain_text(
        "Not allowed: only a group's owners and admins delete other people's messages."
    )
    await expect(theirs.get_by_role("button", name="Delete")).to_have_count(0)  # roles re-read

    # An edit of a message deleted meanwhile (by the owner) is refused as not found.
    mine = page.message("by the admin")
    await mine.get_by_role("button", name="Edit").click()
    await page.composer.fill("too late")
    history = await web_api.all_history(owner, channel)
    async with await web_api.connect(owner) as socket:
        ref = await socket.delete(channel, history[-1]["message_id"])
        await socket.accepted(ref)
        await expect(page.page.locator(".message .tombstone")).to_have_text(["message deleted"])
    await page.composer.press("Enter")
    tombstone = page.page.locator('.message[data-state="deleted"]')
    await expect(tombstone.locator(".send-error")).to_contain_text(
        "Not done: that message was deleted, or is not in this chat."
    )
    await page.screenshot("change-refused")


async def test_search_highlights_matches_opens_the_chat_there_and_follows_edits(
    browser: Browser, web: Process, web_api: Api, artifacts: Path
) -> None:
    owner, member = await web_api.new_device("writer"), await web_api.new_device("seeker")
    await web_api.make_friends(owner, member)  # so the seeker knows the sender's name
    await web_api.group(owner, [member.user_id], name="Study")
    alice = await signed_in(browser, web.url, artifacts, owner.username)
    bob = await signed_in(browser, web.url, artifacts, member.username)
    await alice.open_chat("Study")
    korean, english = "오늘 한국어 공부를 했어요", "the weather is lovely today"
    await alice.send(korean)
    await alice.send(english)
    await alice.expect_texts([korean, english])

    # Bob has not opened the chat: the result says where, who, when, with the match marked.
    await bob.search_until("한국", 1)
    result = bob.search_results
    await expect(result.locator(".chat-name")).to_have_text("Study")
    await expect(result.locator(".sender")).to_have_text(owner.username)
    await expect(result.locator("time")).to_have_count(1)
    await expect(result.locator(".snippet")).to_have_text(korean)
    await expect(result.locator("mark")).to_have_text(["한국"])
    await bob.screenshot("search-results")

    # A click opens the chat at that message, highlighted.
    await result.click()
    await expect(bob.page.locator("#chat-title")).to_have_text("Study")
    await expect(bob.page.locator(".message.highlight .text")).to_have_text(korean)

    # An edit: found by its new text, no longer by the old.
    await alice.message(english).get_by_role("button", name="Edit").click()
    edited = "the garden is lovely today"
    await alice.composer.fill(edited)
    await alice.composer.press("Enter")
    await alice.expect_texts([korean, edited])
    await bob.search_until("garden", 1)
    await expect(bob.search_results.locator("mark")).to_have_text(["garden"])
    await expect(bob.search_results.locator(".snippet")).to_have_text(edited)
    await bob.search_until("weather", 0)
    await expect(bob.search_status).to_have_text("No messages found.")

    # Only the open chat.
    await bob.search_until("lovely", 1, only_open_chat=True)
    await expect(bob.search_status).to_have_text("1 result in Study")

    # A query over 200 characters is refused, and the user is told why.
    await bob.search("a" * 201)
    await expect(bob.page.get_by_test_id("search-error")).to_have_text(
        "The search is too long: at most 200 characters (this one has 201)."
    )
    await expect(bob.search_results).to_have_count(0)
