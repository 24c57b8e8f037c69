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
        await self.page.get_by_placeholder("User id or friend's username").fill(user)
        await self.page.get_by_role("button", name="Chat", exact=True).click()

    async def send(self, text: str) -> None:
        await self.page.get_by_label("Message", exact=True).fill(text)
        await self.page.get_by_label("Message", exact=True).press("Enter")

    async def expect_texts(self, texts: list[str]) -> None:
        """Exactly these messages, in this order, all confirmed by the server."""
        await expect(self.messages).to_have_text(texts)
        await expect(self.page.locator(".message.pending")).to_have_count(0)

    async def screenshot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        await self.page.screenshot(path=path)
        print(f"screenshot: {path}")
        return path
