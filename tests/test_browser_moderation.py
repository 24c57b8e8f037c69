"""The web app in a real browser, tried as a new user would: a member reports a spam message,
the operator reads the report and suspends its sender, whose app is logged out at once saying
why, and whose name is marked as suspended in the chat (docs/protocol.md, "Moderation")."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from parley_client import Operator
from tests.browser_pages import signed_in
from tests.conftest import Api, extra_gateway
from tests.stack import Process, Stack

ADMIN_TOKEN = "operator-token-for-the-browser-tests-0123"


async def test_a_member_reports_spam_and_the_operator_suspends_its_sender(
    browser: Browser, gateway: Process, api: Api, artifacts: Path, stack: Stack
) -> None:
    alice, spammer = await api.new_device("alice"), await api.new_device("spam")
    group = await api.group(alice, [spammer.user_id], name="market")
    async with await api.connect(spammer) as socket:
        await socket.accepted(await socket.send_message(group, "cheap pills, click here"))
        await socket.collect_messages(group, 1)  # stored

    page = await signed_in(browser, gateway.url, artifacts, alice.username)
    spam_page = await signed_in(browser, gateway.url, artifacts, spammer.username)
    await page.open_chat("market")
    spam = page.message("cheap pills, click here")
    # Her own messages offer no report; the spammer's does.
    await page.send("welcome all")
    await expect(page.message("welcome all").get_by_role("button", name="Report")).to_have_count(0)
    await spam.get_by_role("button", name="Report", exact=True).click()
    form = spam.get_by_role("form", name="Report this message")
    await form.get_by_label("Reason").select_option("spam")
    await form.get_by_label("Note").fill("a scam link")
    await form.get_by_role("button", name="Send report").click()
    await expect(spam).to_contain_text("Reported. Thank you.")
    await page.screenshot("reported")
    [report] = await api.channel_reports(alice, group)
    assert (report["reason"], report["note"]) == ("spam", "a scam link")

    # The operator reads the queue and suspends the sender: their app is logged out at once.
    async with (
        extra_gateway(stack, PARLEY_ADMIN_TOKEN=ADMIN_TOKEN) as admin,
        Api(admin.url) as operator,
    ):
        queue = await operator.admin_reports(Operator(ADMIN_TOKEN))
        [seen] = [r for r in queue if r["report_id"] == report["report_id"]]
        assert (seen["reporter_id"], seen["text"]) == (alice.user_id, "cheap pills, click here")
        await operator.suspend(Operator(ADMIN_TOKEN), spammer.user_id)
    await expect(spam_page.page.get_by_role("alert")).to_have_text(
        "This account is suspended by the operator."
    )

    # Alice's app marks the sender once it asks for names again (opening the chat).
    await page.page.reload()
    await page.online()
    await page.open_chat("market")
    sender = page.message("cheap pills, click here").locator(".sender")
    await expect(sender).to_have_text(f"{spammer.username} (suspended)")
    await page.screenshot("suspended")
