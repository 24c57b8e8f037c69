"""The web app as the browser tests see it: Debian's Chromium, driven by Playwright, and the
app's pages with the few steps a person takes on them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Locator, Page, Playwright, expect

from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
# Generous for a busy two-core machine; expect() polls and returns as soon as it holds.
TIMEOUT_MS = 20_000


def chromium_path() -> str:
    """The system's Chromium; never a downloaded one."""
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        raise RuntimeError(
            f"the browser tests need Chromium at {CHROMIUM}: apt-get install -y chromium"
        )
    return CHROMIUM if os.path.exists(CHROMIUM) else str(shutil.which("chromium"))


async def launch(playwright: Playwright) -> Browser:
    expect.set_options(timeout=TIMEOUT_MS)
    return await playwright.chromium.launch(
        executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
    )


async def new_context(browser: Browser, init_script: str | None = None) -> BrowserContext:
    """A browser profile of its own: its own localStorage, so its own device; `init_script`
    runs in every page of it before the app's own."""
    context = await browser.new_context(viewport={"width": 1100, "height": 700})
    if init_script is not None:
        await context.add_init_script(init_script)
    return context


async def signed_in(
    browser: Browser, url: str, artifacts: Path, username: str, init_script: str | None = None
) -> ChatPage:
    """A new browser profile (a new device) logged in as `username`."""
    page = await ChatPage.open(await new_context(browser, init_script), url, artifacts)
    await page.log_in(username)
    return page


class ChatPage:
    """One tab of the web app."""

    def __init__(self, page: Page, artifacts: Path) -> None:
        self.page = page
        self.artifacts = artifacts

    @classmethod
    async def open(cls, context: BrowserContext, url: str, artifacts: Path) -> ChatPage:
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        await page.goto(url)
        return cls(page, artifacts)

    async def log_in(self, username: str, sign_up: bool = False) -> None:
        await self.page.get_by_label("Username", exact=True).fill(username)
        await self.page.get_by_label("Password", exact=True).fill(PASSWORD)
        await self.page.get_by_role("button", name="Sign up" if sign_up else "Log in").click()
        await self.online()

    async def online(self) -> None:
        await expect(self.connection).to_have_attribute("data-state", "online")

    @property
    def connection(self) -> Locator:
        return self.page.get_by_test_id("connection")

    @property
    def messages(self) -> Locator:
        """Every message shown in the open chat, pending sends included."""
        return self.page.get_by_test_id("messages").locator(".message .text")

    @property
    def notices(self) -> Locator:
        return self.page.get_by_test_id("notices")

    def channel(self, name: str) -> Locator:
        return self.page.get_by_test_id("channels").get_by_role("button", name=name)

    async def open_chat(self, name: str) -> None:
        await self.channel(name).click()
        await expect(self.page.locator("#chat-title")).to_have_text(name)

    async def start_direct(self, user: str) -> None:
        await self.page.get_by_placeholder("Username or user id").fill(user)
        await self.page.get_by_role("button", name="Chat", exact=True).click()

    @property
    def composer(self) -> Locator:
        return self.page.get_by_label("Message", exact=True)

    @property
    def typing(self) -> Locator:
        return self.page.get_by_test_id("typing")

    def message(self, text: str) -> Locator:
        """The delivered message (not a pending send) whose text is `text`."""
        return self.page.locator(
            ".message:not(.pending)", has=self.page.locator(".text", has_text=text)
        )

    def message_at(self, message_id: str) -> Locator:
        return self.page.locator(f'.message[data-message-id="{message_id}"]')

    async def react(self, message: Locator, emoji: str) -> None:
        await message.get_by_role("button", name="React", exact=True).click()
        await message.get_by_role("button", name=f"React {emoji}").click()

    async def send(self, text: str) -> None:
        await self.page.get_by_label("Message", exact=True).fill(text)
        await self.page.get_by_label("Message", exact=True).press("Enter")

    async def expect_texts(self, texts: list[str]) -> None:
        """Exactly these messages, in this order, all confirmed by the server."""
        await expect(self.messages).to_have_text(texts)
        await expect(self.page.locator(".message.pending")).to_have_count(0)

    @property
    def search_results(self) -> Locator:
        return self.page.get_by_test_id("search-results").locator(".search-result")

    @property
    def search_status(self) -> Locator:
        return self.page.get_by_test_id("search-status")

    async def search(self, q: str, only_open_chat: bool = False) -> None:
        """Submits a search and waits for its answer (results, none, or an error)."""
        await self.page.get_by_label("Search messages").fill(q)
        await self.page.get_by_label("Only the open chat").set_checked(only_open_chat)
        await self.page.get_by_role("button", name="Search", exact=True).click()
        await expect(self.search_status).not_to_have_text("Searching…")

    async def search_until(
        self, q: str, count: int, only_open_chat: bool = False, attempts: int = 20
    ) -> None:
        """Searches again until exactly `count` results show: the index follows what is sent
        (and edited) a moment later. Each attempt waits for its answer, so none sleeps."""
        for _ in range(attempts - 1):
            await self.search(q, only_open_chat)
            if await self.search_results.count() == count:
                return
        await self.search(q, only_open_chat)
        await expect(self.search_results).to_have_count(count)

    async def screenshot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        await self.page.screenshot(path=path)
        print(f"screenshot: {path}")
        return path
