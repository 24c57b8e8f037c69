"""The web app in a real browser (Debian's Chromium, driven by Playwright) against the shared
stack: people show by name (profiles, docs/protocol.md), a chat read on screen is read up to
its newest message however its messages arrive, and the top bar says when the browser is
offline."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from tests.browser_pages import signed_in
from tests.conftest import Api, eventually
from tests.stack import Process


async def test_people_who_are_no_friends_show_by_name_and_a_name_can_be_set(
    browser: Browser, gateway: Process, api: Api, artifacts: Path
) -> None:
    alice, bob, carol = [await api.new_device(p) for p in ("alice", "bob", "carol")]
    await api.set_display_name(bob, "Bob Builder")
    direct = await api.direct(bob, alice.user_id)
    group = await api.group(alice, [bob.user_id, carol.user_id], name="crew")
    async with await api.connect(bob) as socket:
        await socket.accepted(await socket.send_message(direct, "hi from bob"))
        await socket.accepted(await socket.send_message(group, "bob in the group"))
        await socket.collect_messages(group, 1)  # stored

    page = await signed_in(browser, gateway.url, artifacts, alice.username)
    await page.open_chat("Bob Builder")  # the direct chat is titled by his name
    await expect(page.message("hi from bob").locator(".sender")).to_have_text("Bob Builder")
    await page.open_chat("crew")
    await expect(page.message("bob in the group").locator(".sender")).to_have_text("Bob Builder")
    await page.page.get_by_role("button", name="Members").click()
    members = page.page.get_by_test_id("members-dialog")
    await expect(members).to_contain_text("Bob Builder")
    await expect(members).to_contain_text(f"@{carol.username}")
    await expect(members).to_contain_text(f"@{alice.username}")
    await expect(members).not_to_contain_text("user …")
    await members.get_by_role("button", name="Close").click()

    # Alice names herself; Bob's app shows it once it opens the chat.
    await page.page.get_by_role("button", name="Settings").click()
    settings = page.page.get_by_test_id("settings-dialog")
    await settings.get_by_label("Your name").fill("Alice Liddell")
    await settings.get_by_role("button", name="Save name").click()
    await expect(settings).to_contain_text("Saved.")
    assert (await api.user(bob, alice.user_id))["display_name"] == "Alice Liddell"
    await settings.get_by_role("button", name="Close").click()
    await page.send("now with a name")
    await expect(page.message("now with a name").locator(".sender")).to_have_text("Alice Liddell")

    bob_page = await signed_in(browser, gateway.url, artifacts, bob.username)
    await bob_page.open_chat("Alice Liddell")
    await expect(bob_page.page.get_by_test_id("channels")).not_to_contain_text("user …")
    await page.screenshot("names")


async def test_messages_read_in_a_burst_move_the_marker_to_the_newest(
    browser: Browser, gateway: Process, api: Api, artifacts: Path
) -> None:
    alice, bob = await api.new_device("alice"), await api.new_device("bob")
    channel = await api.direct(bob, alice.user_id)
    page = await signed_in(browser, gateway.url, artifacts, alice.username)
    async with await api.connect(bob) as socket:
        await socket.accepted(await socket.send_message(channel, "first"))
        await page.open_chat(bob.username)
        await page.expect_texts(["first"])
        # Three together, well within the app's wait before it marks what it shows as read.
        sent = [await socket.send_message(channel, t) for t in ("one", "two", "three")]
        for client_msg_id in sent:
            await socket.accepted(client_msg_id)
        newest = (await socket.collect_messages(channel, 4))[-1]["message_id"]
    await page.expect_texts(["first", "one", "two", "three"])

    async def read_to_the_newest() -> bool:
        [listed] = await api.channels(alice)
        return listed.get("read_message_id") == newest and listed.get("unread_count") == 0

    await eventually(read_to_the_newest, 20, "alice's read marker at the newest message")
    await page.page.reload()
    await page.online()
    await expect(page.channel(bob.username).get_by_test_id("unread")).to_have_count(0)


async def test_the_top_bar_says_offline_while_the_browser_is(
    browser: Browser, gateway: Process, api: Api, artifacts: Path
) -> None:
    alice, bob = await api.new_device("alice"), await api.new_device("bob")
    channel = await api.direct(bob, alice.user_id)
    page = await signed_in(browser, gateway.url, artifacts, alice.username)
    await page.open_chat(bob.username)
    await expect(page.connection).to_have_text("Online")

    await page.page.context.set_offline(True)
    await expect(page.connection).to_have_attribute("data-state", "offline")
    await expect(page.connection).to_have_text("Offline")
    await page.send("written offline")
    await page.screenshot("offline")

    await page.page.context.set_offline(False)
    await page.online()
    await expect(page.connection).to_have_text("Online")
    await page.expect_texts(["written offline"])

    async def stored() -> bool:  # accepted is in the log; the store follows
        return [m["text"] for m in await api.history(bob, channel)] == ["written offline"]

    await eventually(stored, 20, "the message written offline stored")
