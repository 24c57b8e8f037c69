"""The web app in a real browser (Debian's Chromium, driven by Playwright) against the shared
stack, hardened: a crafted link never sends a request to another API path than the app means
(each id is one encoded path segment, and only known route shapes are followed), and the app
works under its Content-Security-Policy, which lets a page reach its own host only."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from playwright.async_api import Browser, expect

from tests.browser_pages import ChatPage, new_context, signed_in
from tests.conftest import Api, eventually
from tests.stack import Process

# Hashes a link may carry. Read by the old route parser, the first three made a channel id
# that walked out of /v1/channels/{id}/members/{user} (to DELETE /v1/devices: every device
# logged out); the rest are shapes the app has no route for.
CRAFTED = [
    "#channel=..%2Fdevices%23",
    "#channel=..%2Fdevices%3F",
    "#channel=%2E%2E%2Fdevices%23",
    "#channel=..",
    "#/channel/..%2F..%2Fdevices",
    "#channel=12abc&message=1",
    "#channel=1&message=..%2F..%2Fdevices",
    "#channel=99999999999999999999",
    "#message=1&channel=1",
]


# Every Content-Security-Policy violation the page meets, as "directive blocked-uri".
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.effectiveDirective + " " + e.blockedURI);
});
"""


async def test_a_crafted_link_revokes_nothing_and_shows_the_chat_list(
    browser: Browser, gateway: Process, api: Api, artifacts: Path
) -> None:
    alice, bob = await api.new_device("alice"), await api.new_device("bob")
    group = await api.group(alice, [bob.user_id], name="Crafted")
    page = await signed_in(browser, gateway.url, artifacts, alice.username, WATCH_VIOLATIONS)
    title = page.page.locator("#chat-title")
    members = page.page.get_by_test_id("members-dialog")
    for crafted in CRAFTED:
        # The members dialog of a chat is open when the link is followed; then the click on
        # "Leave" that the crafted channel id would have turned into another request.
        await page.open_chat("Crafted")
        await page.page.get_by_role("button", name="Members", exact=True).click()
        await expect(members).to_be_visible()
        await page.page.evaluate("(hash) => { location.hash = hash; }", crafted)
        await expect(title).to_have_text("Parley")  # the chat list: no chat open
        leave = members.get_by_role("button", name="Leave", exact=True)
        if await leave.is_visible():
            await leave.click()
        await expect(members).to_be_hidden()
        assert await page.page.evaluate("location.hash") == "", crafted
        await expect(page.channel("Crafted")).to_be_visible()

        # The server: no device revoked, and alice still in the group.
        devices = await api.request("GET", "/v1/devices", auth=alice)
        assert devices.status_code == 200, (crafted, devices.text)
        assert len(devices.json()["devices"]) == 2, crafted
        assert group in [c["channel_id"] for c in await api.channels(alice)], crafted
        await page.online()

    # A crafted link opened as a new page (a reload): the chat list, the hash dropped.
    for crafted in CRAFTED[:3]:
        await page.page.goto(urllib.parse.urljoin(gateway.url, "/") + crafted)
        await page.online()
        await expect(title).to_have_text("Parley")
        assert await page.page.evaluate("location.hash") == "", crafted
    # A link the app made still opens its chat.
    await page.page.goto(urllib.parse.urljoin(gateway.url, "/") + f"#channel={group}")
    await page.online()
    await expect(title).to_have_text("Crafted")
    devices = await api.request("GET", "/v1/devices", auth=alice)
    assert devices.status_code == 200 and len(devices.json()["devices"]) == 2
    await page.screenshot("crafted-link")


async def test_the_app_logs_in_sends_and_receives_under_its_csp(
    browser: Browser, gateway: Process, api: Api, artifacts: Path
) -> None:
    alice, bob = await api.new_device("alice"), await api.new_device("bob")
    await api.direct(bob, alice.user_id)
    # Alice's discovery names only a gateway elsewhere (this host, another port), which the
    # policy refuses: the app falls back to the origin that served it.
    elsewhere = {"gateways": [{"url": "ws://127.0.0.1:9/v1/ws"}]}
    alice_context = await new_context(browser, WATCH_VIOLATIONS)
    await alice_context.route(
        "**/v1/discovery", lambda route: route.fulfill(json=elsewhere, status=200)
    )
    alice_page = await ChatPage.open(alice_context, gateway.url, artifacts)
    await alice_page.log_in(alice.username)
    await expect(alice_page.connection).to_have_attribute("data-gateway", gateway.ws_url)
    bob_page = await signed_in(browser, gateway.url, artifacts, bob.username, WATCH_VIOLATIONS)
    await alice_page.open_chat(bob.username)
    await bob_page.open_chat(alice.username)
    await alice_page.send("under the policy")
    await bob_page.expect_texts(["under the policy"])
    await bob_page.send("still talking")
    await alice_page.expect_texts(["under the policy", "still talking"])

    host = urllib.parse.urlsplit(gateway.url).netloc
    own = {f"http://{host}", f"ws://{host}"}
    # The policy is in force: another origin, even this host's other port, is refused.
    outcome = await alice_page.page.evaluate(
        """async () => {
          try { await fetch("http://192.0.2.1:9/"); return "reached"; }
          catch { return "blocked"; }
        }"""
    )
    assert outcome == "blocked"
    await alice_page.page.evaluate("() => { try { new WebSocket('ws://127.0.0.1:9/'); } catch {} }")

    async def reported() -> bool:
        seen: list[str] = await alice_page.page.evaluate("window.__violations")
        return any("ws://127.0.0.1:9" in v for v in seen)

    await eventually(reported, 10, "the refused WebSocket's violation report")
    for page in (alice_page, bob_page):
        violations: list[str] = await page.page.evaluate("window.__violations")
        for violation in violations:
            directive, _, blocked = violation.partition(" ")
            # Scripts, styles and images are the app's own; what it connects to is its
            # origin, and what is refused is elsewhere (a gateway discovery names on another
            # port, or the probes above).
            assert directive == "connect-src", violation
            assert not any(blocked.startswith(o) for o in own), violation
    violations = await alice_page.page.evaluate("window.__violations")
    assert any("192.0.2.1" in v for v in violations), violations
    assert any("ws://127.0.0.1:9" in v for v in violations), violations
    await alice_page.screenshot("under-csp")
