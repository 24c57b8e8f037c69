"""Mentions and notification settings (SPEC: issue #23 item 5): `@username` resolved in the
channel's order into the message's `mentions`, unread mentions in the channel list, and each
member's notification level per channel, synced to their devices and respected by pushes."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, sent


async def listed(api: Api, device: Any, channel_id: str) -> dict[str, Any]:
    (found,) = [c for c in await api.channels(device) if c["channel_id"] == channel_id]
    return dict(found)


async def test_a_mention_names_members_only_and_none_across_a_block(api: Api) -> None:
    alice, bob, carol, blocker, gone, outsider = [await api.new_device("mn") for _ in range(6)]
    group = await api.group(
        alice, [bob.user_id, carol.user_id, blocker.user_id, gone.user_id], name="mentions"
    )
    await api.block(blocker, alice.user_id)
    await api.remove_member(alice, group, gone.user_id)
    a, b = await api.connect(alice), await api.connect(bob)
    text = (
        f"hi @{bob.username.upper()}, @{carol.username}. and @{blocker.username}"
        f" @{gone.username} @{outsider.username} @{alice.username} @nobody-at-all"
        f" me@{bob.username} @{bob.username} again"
    )
    await sent(a, group, ["no one here", text])
    plain, mentioning = await b.collect_messages(group, 2)
    assert "mentions" not in plain
    # Case-folded, in order, each once; the sentence's final "." is not part of the name. A
    # removed member, a non-member, one across a block, the sender, an address: nobody.
    assert mentioning["mentions"] == [bob.user_id, carol.user_id]
    history = await api.history(bob, group)
    assert [m.get("mentions") for m in history] == [None, [bob.user_id, carol.user_id]]


async def test_unread_mentions_are_counted_beside_unread_messages(api: Api) -> None:
    alice, bob = await api.new_device("mc"), await api.new_device("mc")
    group = await api.group(alice, [bob.user_id], name="counts")
    a = await api.connect(alice)
    ids = await sent(a, group, [f"@{bob.username} one", "two", f"three @{bob.username}"])
    found = await listed(api, bob, group)
    assert (found["unread_count"], found["mention_count"]) == (3, 2)
    assert (await listed(api, alice, group))["mention_count"] == 0
    b = await api.connect(bob)
    await b.read(group, ids[0])
    await b.until(lambda f: f["type"] == "read" and f["message_id"] == ids[0])
    found = await listed(api, bob, group)
    assert (found["unread_count"], found["mention_count"]) == (2, 1)
    await a.accepted(await a.delete(group, ids[2]))  # a deleted message mentions nobody
    await b.until(lambda f: f["type"] == "delete")
    found = await listed(api, bob, group)
    assert (found["unread_count"], found["mention_count"]) == (1, 0)
