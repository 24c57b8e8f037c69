"""Replies in the web app, in a real browser (Debian's Chromium, driven by Playwright) against
the shared stack: a reply shows the quoted sender by name and the start of the text, the
answered message counts its replies and opens its thread, and the quote becomes a tombstone
once the answered message is deleted (docs/protocol.md, Replies and threads)."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from tests.browser_pages import signed_in
from tests.conftest import Api
from tests.stack import Process


async def test_a_reply_quotes_its_message_opens_its_thread_and_shows_a_tombstone(
    browser: Browser, gateway: Process, api: Api, artifacts: Path
) -> None:
    alice, bob = await api.new_device("alice"), await api.new_device("bob")
    await api.set_display_name(bob, "Bob Builder")
    channel = await api.direct(bob, alice.user_id)
    async with await api.connect(bob) as socket:
        await socket.accepted(await socket.send_message(channel, "the question"))
        (question,) = await socket.collect_messages(channel, 1)

        page = await signed_in(browser, gateway.url, artifacts, alice.username)
        await page.open_chat("Bob Builder")
        original = page.message("the question")
        await original.get_by_role("button", name="Reply", exact=True).click()
        await expect(page.page.get_by_test_id("replying")).to_contain_text(
            "Replying to Bob Builder: the question"
        )
        await page.send("the answer")
        await page.expect_texts(["the question", "the answer"])
        await expect(page.page.get_by_test_id("replying")).to_be_hidden()
        quote = page.message("the answer").locator(".quote")
        await expect(quote.locator(".quote-sender")).to_have_text("Bob Builder")
        await expect(quote.locator(".quote-text")).to_have_text("the question")
        await expect(original.locator(".replies")).to_have_text("1 reply")
        await original.locator(".replies").click()
        thread = page.page.get_by_test_id("thread")
        await expect(thread.locator(".message .text")).to_have_text(["the question", "the answer"])
        await page.screenshot("reply-and-thread")
        await page.page.get_by_role("button", name="Close panel").click()
        await expect(thread).to_be_hidden()

        # Bob answers too, then deletes his question: the quotes become tombstones, live and
        # after a reload, and the question's words are gone from the page.
        await socket.accepted(
            await socket.send_message(channel, "my own answer", reply_to=question["message_id"])
        )
        await expect(original.locator(".replies")).to_have_text("2 replies")
        await socket.accepted(await socket.delete(channel, question["message_id"]))
        for text in ("the answer", "my own answer"):
            tombstone = page.message(text).locator(".quote")
            await expect(tombstone).to_have_attribute("data-state", "deleted")
            await expect(tombstone).to_contain_text("message deleted")
        await page.page.reload()
        await page.online()
        await page.open_chat("Bob Builder")
        await expect(page.message("the answer").locator(".quote")).to_have_attribute(
            "data-state", "deleted"
        )
        await expect(page.page.get_by_test_id("messages")).not_to_contain_text("the question")
        await page.screenshot("reply-tombstone")


async def test_pins_show_on_their_message_and_in_the_pins_list_and_go_with_a_delete(
    browser: Browser, gateway: Process, api: Api, artifacts: Path
) -> None:
    alice, bob, carol = [await api.new_device(p) for p in ("alice", "bob", "carol")]
    await api.set_display_name(bob, "Bob Builder")
    group = await api.group(bob, [alice.user_id, carol.user_id], name="pinboard")
    async with await api.connect(bob) as socket:
        for text in ("keep this", "and this"):
            await socket.accepted(await socket.send_message(group, text))
        keep, other = [m["message_id"] for m in await socket.collect_messages(group, 2)]
        await socket.accepted(await socket.pin(group, keep))

        page = await signed_in(browser, gateway.url, artifacts, alice.username)
        await page.open_chat("pinboard")
        pinned = page.message("keep this")
        await expect(pinned.locator(".pinned")).to_have_text("📌 Pinned by Bob Builder")
        # A plain member of a group is offered no pin.
        await expect(pinned.get_by_role("button", name="Unpin")).to_have_count(0)
        await page.page.get_by_role("button", name="Pins", exact=True).click()
        panel = page.page.get_by_test_id("thread")
        await expect(panel.locator(".message .text")).to_have_text(["keep this"])
        await page.page.get_by_role("button", name="Close panel").click()

        # Made an admin, Alice pins the other one; Bob's socket sees it.
        await api.set_role(bob, group, alice.user_id, "admin")
        await page.page.reload()
        await page.online()
        await page.open_chat("pinboard")
        await page.message("and this").get_by_role("button", name="Pin", exact=True).click()
        pin = await socket.until(lambda f: f["type"] == "pin" and f["target_id"] == other)
        assert pin["sender_id"] == alice.user_id
        alice_name = alice.username
        await expect(page.message("and this").locator(".pinned")).to_have_text(
            f"📌 Pinned by {alice_name}"
        )
        await page.page.get_by_role("button", name="Pins", exact=True).click()
        await expect(panel.locator(".message .text")).to_have_text(["and this", "keep this"])
        await page.screenshot("pins")
        await page.page.get_by_role("button", name="Close panel").click()

        # Bob deletes his pinned message: unpinned everywhere.
        await socket.accepted(await socket.delete(group, keep))
        await expect(page.page.get_by_test_id("messages").locator(".pinned")).to_have_count(1)
        assert [m["message_id"] for m in await api.pins(alice, group)] == [other]
