"""Mentions and notification settings in the web app (a real Chromium, driven by Playwright,
against the shared stack): a friend mutes a group in the app, the mute reaches their other
device, and a mention there shows as a mention badge (no unread badge) and marked in the
chat (the push of a mention alone: tests/test_mentions.py)."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from tests.browser_pages import signed_in
from tests.conftest import Api, sent
from tests.stack import Process


async def test_a_mention_in_a_muted_group_shows_a_mention_badge_and_nothing_else(
    browser: Browser, gateway: Process, api: Api, artifacts: Path
) -> None:
    alice, bob, carol = [await api.new_device(p) for p in ("alice", "bob", "carol")]
    await api.make_friends(alice, bob)
    direct = await api.direct(alice, bob.user_id)
    group = await api.group(alice, [bob.user_id, carol.user_id], name="crew")
    a = await api.connect(alice)
    await sent(a, direct, ["hello bob"])

    page = await signed_in(browser, gateway.url, artifacts, bob.username)
    laptop = await api.connect(await api.add_device(bob.username, "laptop"))
    await page.open_chat("crew")
    await page.page.get_by_test_id("mute").click()
    await expect(page.page.get_by_test_id("mute")).to_have_text("Unmute")
    # The mute reaches bob's other devices, and the list.
    frame = await laptop.until(lambda f: f["type"] == "notifications")
    assert (frame["channel_id"], frame["level"]) == (group, "all")
    assert frame["muted_until"] is not None
    (listed,) = [c for c in await api.channels(bob) if c["channel_id"] == group]
    assert listed["notifications"] == {
        "level": "all",
        "muted_until": frame["muted_until"],
        "version": frame["version"],
    }

    await page.open_chat(alice.username)  # away from the group while it gets messages
    await sent(a, group, ["just chatting", f"@{bob.username} look at this", "more chat"])
    crew = page.channel("crew")
    await expect(crew.get_by_test_id("mentions")).to_have_text("@1")
    await expect(crew.get_by_test_id("unread")).to_have_count(0)  # muted: no unread badge
    await expect(crew.get_by_test_id("quiet")).to_have_count(1)
    await page.screenshot("muted-mention")
    await page.open_chat("crew")
    mention = page.message("look at this")
    await expect(mention).to_have_class("message mentions-me")
    await expect(mention.locator("mark.mention")).to_have_text(f"@{bob.username}")
    await expect(page.message("just chatting")).to_have_class("message")
    await expect(crew.get_by_test_id("mentions")).to_have_count(0)  # read on screen

    # Carol's view is untouched: the group is not muted for her, and no one mentioned her.
    (hers,) = [c for c in await api.channels(carol) if c["channel_id"] == group]
    assert (hers["unread_count"], hers["mention_count"]) == (3, 0)
