"""Issue #23 tried as a new user would, in two real browsers (Debian's Chromium, driven by
Playwright) and two client-library members, against the shared stack: a group of four made in
the web app, a reply in a thread, a mention of a friend who muted the group (a mention badge
and a push, nothing else), the plan pinned, and a spam message reported and its sender
suspended by the operator. Every name on screen is a name, never the app's id fallback."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import Browser, Response, expect

from parley_client import Operator, Session
from storage.stores import Stores
from tests.browser_pages import ChatPage, signed_in
from tests.conftest import Api, eventually, extra_gateway, push_marker, wait_connected
from tests.push_receiver import PushReceiver
from tests.stack import Process, Stack

ADMIN_TOKEN = "operator-token-for-the-journey-test-0123"
# What the app shows for a user whose name it does not know (web/app/chat-app.js, nameOf).
ID_FALLBACK = re.compile(r"user …\d")
GROUP = "weekend trip"
PLAN = "the plan: the 9:10 train on Saturday, platform 4"
SPAM = "cheap pills, click here"


async def names_only(page: ChatPage) -> None:
    """Nowhere on the page (chat list, header, messages, quotes, open panels and dialogs) is
    a user shown by the id fallback."""
    await expect(page.page.locator("body")).not_to_contain_text(ID_FALLBACK)


# Every (chat, mention badge, unread badge) the chat list shows, from the page's start.
BADGES_SEEN = """
window.badgesSeen = new Set();
const badge = (chat, id) => chat.querySelector(`[data-testid=${id}]`)?.textContent ?? null;
new MutationObserver(() => {
  for (const chat of document.querySelectorAll("[data-testid=channels] .channel")) {
    const seen = [chat.querySelector(".name").textContent, badge(chat, "mentions"), badge(chat, "unread")];
    window.badgesSeen.add(JSON.stringify(seen));
  }
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


async def reopened(page: ChatPage, url: str, artifacts: Path) -> ChatPage:
    """The app opened again in the closed tab's browser (its login and cached chats kept),
    once it has caught up: its socket synced and, after that, the chat list read again.
    Its `window.badgesSeen` holds every badge shown meanwhile."""
    tab = await page.page.context.new_page()
    await tab.add_init_script(BADGES_SEEN)
    lists: list[Response] = []
    tab.on(
        "response", lambda r: lists.append(r) if urlsplit(r.url).path == "/v1/channels" else None
    )
    await tab.goto(url)
    again = ChatPage(tab, artifacts)
    await again.online()

    async def listed_again() -> bool:  # once at the start, once after `synced`
        return len(lists) >= 2

    await eventually(listed_again, 20, "the chat list read again after the sync")
    return again


async def delivered(socket: Session, channel_id: str, text: str) -> str:
    """The id of the channel's message `text`, once it reached the socket."""
    while True:
        for message in socket.messages(channel_id):
            if message["text"] == text:
                return message["message_id"]
        await socket.collect_messages(channel_id, len(socket.messages(channel_id)) + 1)


async def test_a_group_of_four_replies_mentions_a_muted_friend_pins_and_reports_spam(
    browser: Browser,
    gateway: Process,
    api: Api,
    stack: Stack,
    stores: Stores,
    push_receiver: PushReceiver,
    artifacts: Path,
) -> None:
    ann, bea, cal, dee = [await api.new_device(p) for p in ("ann", "bea", "cal", "dee")]
    names = {ann: "Ann Archer", bea: "Bea Baker", cal: "Cal Cooper", dee: "Dee Dealer"}
    for member, name in names.items():
        await api.set_display_name(member, name)
    await api.make_friends(ann, bea)
    # Bea's phone: where her pushes go while no app of hers is open.
    await api.register_push(bea, "apns", f"phone-{bea.device_id}")

    # Ann makes the group of four in the web app.
    a = await signed_in(browser, gateway.url, artifacts, ann.username)
    await a.page.get_by_role("button", name="New group").click()
    dialog = a.page.get_by_test_id("group-dialog")
    await dialog.get_by_label("Name", exact=True).fill(GROUP)
    await dialog.get_by_label("Members", exact=True).fill(
        ", ".join(m.username for m in (bea, cal, dee))
    )
    await dialog.get_by_role("button", name="Create group").click()
    await expect(a.page.locator("#chat-title")).to_have_text(GROUP)
    [group] = [c["channel_id"] for c in await api.channels(cal) if c["name"] == GROUP]
    people = a.page.get_by_test_id("chat-people")
    # Bea, a friend, with her presence after her name.
    await expect(people.locator(".person")).to_contain_text(
        ["Bea Baker", "Cal Cooper", "Dee Dealer"]
    )
    await a.page.get_by_role("button", name="Members").click()
    members = a.page.get_by_test_id("members-dialog")
    for name in names.values():
        await expect(members).to_contain_text(name)
    await names_only(a)
    await members.get_by_role("button", name="Close").click()

    c = await api.connect(cal)
    d = await api.connect(dee)
    async with c.heartbeating(), d.heartbeating():
        # Bea mutes the group in her app.
        b = await signed_in(browser, gateway.url, artifacts, bea.username)
        await b.open_chat(GROUP)
        await b.page.get_by_test_id("mute").click()
        await expect(b.page.get_by_test_id("mute")).to_have_text("Unmute")
        await names_only(b)

        # Cal asks; Ann answers in a thread.
        await c.accepted(await c.send_message(group, "who brings the tent?"))
        question = a.message("who brings the tent?")
        await expect(question.locator(".sender")).to_have_text("Cal Cooper")
        await question.get_by_role("button", name="Reply", exact=True).click()
        await expect(a.page.get_by_test_id("replying")).to_contain_text(
            "Replying to Cal Cooper: who brings the tent?"
        )
        await a.send("I will bring it")
        quote = a.message("I will bring it").locator(".quote")
        await expect(quote.locator(".quote-sender")).to_have_text("Cal Cooper")
        await expect(quote.locator(".quote-text")).to_have_text("who brings the tent?")
        await expect(question.locator(".replies")).to_have_text("1 reply")
        await question.locator(".replies").click()
        thread = a.page.get_by_test_id("thread")
        await expect(thread.locator(".message .text")).to_have_text(
            ["who brings the tent?", "I will bring it"]
        )
        await expect(thread.locator(".message .sender")).to_have_text(["Cal Cooper", "Ann Archer"])
        await names_only(a)
        await a.screenshot("thread")
        await a.page.get_by_role("button", name="Close panel").click()

        # Bea closes her app. A plain message in the muted group pushes her nothing (judged
        # up to a marker push); Ann's mention of her does.
        await b.page.close()
        await wait_connected(stores, bea.user_id, False)
        await a.send("see you all there")
        await delivered(c, group, "see you all there")
        await push_marker(api, push_receiver, cal, [bea])

        def pushed() -> list[str]:
            return [
                p["message_id"]
                for p in push_receiver.accepted(bea.user_id)
                if p["channel_id"] == group
            ]

        assert pushed() == []
        mention_text = f"@{bea.username} can you bring snacks?"
        await a.send(mention_text)
        mention = await delivered(c, group, mention_text)
        push = await push_receiver.wait_channel(bea.user_id, group)
        assert (push["message_id"], push["sender_id"]) == (mention, ann.user_id)
        assert pushed() == [mention]

        # Back in her app: a mention badge, no unread badge, for the muted group; counted
        # once, also while the app catches up with what it missed.
        b = await reopened(b, gateway.url, artifacts)
        chat = b.channel(GROUP)
        await expect(chat.get_by_test_id("mentions")).to_have_text("@1")
        seen = [json.loads(s) for s in await b.page.evaluate("[...window.badgesSeen]")]
        assert [s for s in seen if s[0] == GROUP] == [[GROUP, "@1", None]]
        await expect(chat.get_by_test_id("unread")).to_have_count(0)
        await expect(chat.get_by_test_id("quiet")).to_have_count(1)
        await names_only(b)
        await b.screenshot("muted-mention")
        await b.open_chat(GROUP)
        await expect(b.message("can you bring snacks?")).to_have_class("message mentions-me")
        await expect(chat.get_by_test_id("mentions")).to_have_count(0)

        # Ann pins the plan; Bea finds it in the pins list.
        await a.send(PLAN)
        await a.message(PLAN).get_by_role("button", name="Pin", exact=True).click()
        await expect(a.message(PLAN).locator(".pinned")).to_have_text("📌 Pinned by Ann Archer")
        await expect(b.message(PLAN).locator(".pinned")).to_have_text("📌 Pinned by Ann Archer")
        await b.page.get_by_role("button", name="Pins", exact=True).click()
        pins = b.page.get_by_test_id("thread")
        await expect(pins.locator(".message .text")).to_have_text([PLAN])
        await expect(pins.locator(".message .sender")).to_have_text(["Ann Archer"])
        await expect(pins.locator(".pinned")).to_have_text(["📌 Pinned by Ann Archer"])
        await names_only(b)
        await b.screenshot("pins")
        await b.page.get_by_role("button", name="Close panel").click()

        # Dee spams; Bea reports it; the operator suspends Dee, whose socket closes (4003).
        await d.accepted(await d.send_message(group, SPAM))
        spam = b.message(SPAM)
        await expect(spam.locator(".sender")).to_have_text("Dee Dealer")
        await spam.get_by_role("button", name="Report", exact=True).click()
        form = spam.get_by_role("form", name="Report this message")
        await form.get_by_label("Reason").select_option("spam")
        await form.get_by_label("Note").fill("a scam link")
        await form.get_by_role("button", name="Send report").click()
        await expect(spam).to_contain_text("Reported. Thank you.")
        spam_id = await delivered(c, group, SPAM)
        async with (
            extra_gateway(stack, PARLEY_ADMIN_TOKEN=ADMIN_TOKEN) as admin,
            Api(admin.url) as operator,
        ):
            queue = await operator.admin_reports(Operator(ADMIN_TOKEN))
            [report] = [r for r in queue if r["message_id"] == spam_id]
            assert (report["reporter_id"], report["sender_id"]) == (bea.user_id, dee.user_id)
            assert (report["reason"], report["note"], report["text"]) == (
                "spam",
                "a scam link",
                SPAM,
            )
            await operator.suspend(Operator(ADMIN_TOKEN), dee.user_id)
        assert await d.wait_closed(20) == 4003

    # After a reload Bea's app shows Dee as suspended; every name is still a name.
    await b.page.reload()
    await b.online()
    await b.open_chat(GROUP)
    await expect(b.message(SPAM).locator(".sender")).to_have_text("Dee Dealer (suspended)")
    await expect(b.page.get_by_test_id("chat-people")).to_contain_text("Dee Dealer (suspended)")
    await names_only(b)
    await names_only(a)
    await b.screenshot("suspended")
    await c.close()
