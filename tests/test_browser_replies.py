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
        await page.page.get_by_role("button", name="Close thread").click()
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
