"""Push providers: how a push notification leaves Parley. The notifier decides what to push;
a provider only delivers.

- `log`: writes each push as one JSON line to standard error, through the `parley.push.log`
  logger (development, audits).
- `webhook`: POSTs each push to the operator's push relay, which forwards it to APNs, FCM or
  Web Push by each target's `platform` and `token`. Every request is signed: the header
  `Parley-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret>`;
  `Idempotency-Key` carries the `push_id`, the same on every retry. Connection errors,
  timeouts, 429 and 5xx are retried with exponential backoff up to `push_attempts` times; other
  answers are final.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import sys
import time
from typing import Protocol

import aiohttp

from schemas.push import PushNotificationV1
from schemas.settings import Settings

log = logging.getLogger("parley.push")


class PushProvider(Protocol):
    async def send(self, push: PushNotificationV1) -> bool:
        """Deliver one push; True once the provider accepted it, False if it gave up."""

    async def close(self) -> None:
        """Release connections."""


class LogProvider:
    def __init__(self) -> None:
        # Pushes are what this provider is for: they are written whatever the process's log
        # level and handlers (a Faust worker's root handler drops INFO), to standard error.
        push_log = logging.getLogger("parley.push.log")
        if not push_log.handlers:
            handler = logging.StreamHandler(sys.__stderr__)  # Faust redirects sys.stderr
            handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] %(message)s"))
            push_log.addHandler(handler)
            push_log.setLevel(logging.INFO)
            push_log.propagate = False
        self._log = push_log

    async def send(self, push: PushNotificationV1) -> bool:
        self._log.info("push %s", push.encode().decode())
        return True

    async def close(self) -> None:
        pass


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The `Parley-Signature` header value for a body sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class WebhookProvider:
    def __init__(
        self, url: str, secret: bytes, timeout_s: float, attempts: int, retry_base_s: float
    ) -> None:
        self._url = url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._attempts = attempts
        self._retry_base_s = retry_base_s
        self._session: aiohttp.ClientSession | None = None

    async def send(self, push: PushNotificationV1) -> bool:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = push.encode()
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(self._retry_base_s * 2 ** (attempt - 1))
            headers = {
                "Content-Type": "application/json",
                "Idempotency-Key": push.push_id,
                "Parley-Signature": signature(self._secret, int(time.time()), body),
            }
            try:
                async with self._session.post(self._url, data=body, headers=headers) as answer:
                    status = answer.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("push %s: attempt %d failed: %r", push.push_id, attempt + 1, exc)
                continue
            if status < 300:
                return True
            log.warning("push %s: attempt %d answered %d", push.push_id, attempt + 1, status)
            if status != 429 and status < 500:
                return False  # the relay refused this push; sending it again will not help
        return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def open_provider(settings: Settings) -> PushProvider:
    if settings.push_provider == "log":
        return LogProvider()
    if not settings.push_webhook_url or settings.push_webhook_secret is None:
        raise ValueError(
            "the webhook push provider needs PARLEY_PUSH_WEBHOOK_URL and PARLEY_PUSH_WEBHOOK_SECRET"
        )
    return WebhookProvider(
        settings.push_webhook_url,
        settings.push_webhook_secret.get_secret_value().encode(),
        settings.push_webhook_timeout_s,
        settings.push_attempts,
        settings.push_retry_base_s,
    )
