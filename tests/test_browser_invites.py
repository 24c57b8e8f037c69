"""Invite links and the export in the web app, in real browsers (Debian's Chromium, driven by
Playwright) against the shared stack: an owner makes a link, a second browser opens it, sees
the group and joins it; revoked, the link no longer works in a third. A user downloads their
data from the settings."""

from __future__ import annotations

from pathlib import Path

import orjson
from playwright.async_api import Browser, expect

from tests.browser_pages import signed_in
from tests.conftest import Api
from tests.stack import Process


async def test_a_link_made_in_one_browser_lets_another_join_until_it_is_revoked(
    browser: Browser, gateway: Process, api: Api, artifacts: Path
) -> None:
    alice, bob = await api.new_device("alice"), await api.new_device("bob")
    # Carol lets nobody add her to groups: a link is her own choice.
    carol = await api.new_device("carol", group_adds="nobody")
    dave = await api.new_device("dave")
    await api.group(alice, [bob.user_id], name="hikers")

    owner = await signed_in(browser, gateway.url, artifacts, alice.username)
    await owner.open_chat("hikers")
    await owner.page.get_by_role("button", name="Members").click()
    await (
        owner.page.get_by_test_id("members-dialog")
        .get_by_role("button", name="Invite links")
        .click()
    )
    invites = owner.page.get_by_test_id("invites-dialog")
    await expect(invites).to_contain_text("No invite links.")
    await invites.get_by_label("Uses").fill("5")
    await invites.get_by_role("button", name="Create link").click()
    link_field = invites.get_by_test_id("invite-link")
    link = await link_field.input_value()
    assert link.startswith(f"{gateway.url}/#join=") and len(link.rpartition("=")[2]) == 24
    await expect(invites.locator("li[data-invite-id]")).to_contain_text("used 0 of 5")
    await owner.screenshot("invite-made")

    joiner = await signed_in(browser, gateway.url, artifacts, carol.username)
    await joiner.page.goto(link)
    join = joiner.page.get_by_test_id("join-dialog")
    await expect(join.get_by_test_id("join-name")).to_have_text("hikers")
    await expect(join).to_contain_text("2 members")
    await joiner.screenshot("invite-preview")
    await join.get_by_role("button", name="Join").click()
    await expect(joiner.page.locator("#chat-title")).to_have_text("hikers")
    await joiner.send("hello hikers")
    await invites.get_by_role("button", name="Close").click()
    await owner.page.get_by_test_id("members-dialog").get_by_role("button", name="Close").click()
    await expect(owner.message("hello hikers")).to_be_visible()
    channel = (await api.channels(carol))[0]
    assert sorted(channel["members"]) == sorted([alice.user_id, bob.user_id, carol.user_id])

    # Revoked in the owner's browser: the link no longer works.
    await owner.page.get_by_role("button", name="Members").click()
    await (
        owner.page.get_by_test_id("members-dialog")
        .get_by_role("button", name="Invite links")
        .click()
    )
    invites = owner.page.get_by_test_id("invites-dialog")
    await expect(invites.locator("li[data-invite-id]")).to_contain_text("used 1 of 5")
    await invites.get_by_role("button", name="Revoke").click()
    await expect(invites).to_contain_text("No invite links.")

    late = await signed_in(browser, gateway.url, artifacts, dave.username)
    await late.page.goto(link)
    refused = late.page.get_by_test_id("join-dialog")
    await expect(refused.get_by_role("alert")).to_have_text(
        "This invite link does not work: it was revoked, expired or used up."
    )
    await expect(refused.get_by_role("button", name="Join")).to_have_count(0)
    assert await api.channels(dave) == []


async def test_a_user_downloads_their_data_from_the_settings(
    browser: Browser, gateway: Process, api: Api, artifacts: Path
) -> None:
    alice, bob = await api.new_device("alice"), await api.new_device("bob")
    group = await api.group(alice, [bob.user_id], name="exporters")
    async with await api.connect(alice) as socket:
        await socket.accepted(await socket.send_message(group, "mine to take"))
        await socket.collect_messages(group, 1)

    page = await signed_in(browser, gateway.url, artifacts, alice.username)
    await page.page.get_by_role("button", name="Settings").click()
    settings = page.page.get_by_test_id("settings-dialog")
    async with page.page.expect_download() as downloading:
        await settings.get_by_role("button", name="Download my data").click()
    download = await downloading.value
    assert download.suggested_filename == f"parley-export-{alice.user_id}.ndjson"
    saved = artifacts / download.suggested_filename
    await download.save_as(saved)
    lines = [orjson.loads(line) for line in saved.read_bytes().splitlines()]
    assert lines[1] == {
        "type": "account",
        "user_id": alice.user_id,
        "username": alice.username,
        "display_name": None,
    }
    assert [m["text"] for m in lines if m["type"] == "message"] == ["mine to take"]
    assert lines[-1] == {"type": "end", "messages": 1}
    await expect(settings.get_by_role("alert")).to_have_text("")
