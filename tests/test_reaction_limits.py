"""Reaction caps (docs/protocol.md, "Edits, deletes and reactions"): a message takes at most 50
different emoji, one user's at most 20 of them. The gateway refuses what the stored reactions
already rule out (`invalid`); reactions accepted at the same time are judged in the channel's
order by its one writer, and one beyond the caps is stored, and delivered to every device, as
taken back with the reason (`refused`). Every accepted reaction is either on the message or
so refused; live views and history agree."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from parley_client import Frame, Login, Session
from schemas.limits import MAX_REACTIONS_PER_MESSAGE, MAX_REACTIONS_PER_USER
from tests.conftest import Api
from tests.stack import Stack
from tests.test_message_changes import history_view, refused, view


@pytest.fixture
def stack(stack_on_each_store: Stack) -> Stack:
    """Every test here runs on both message stores."""
    return stack_on_each_store


EMOJI = [chr(0x1F300 + i) for i in range(200)]  # 🌀 onwards: 200 different emoji


async def react_all(socket: Session, channel_id: str, target: str, emoji: list[str]) -> list[str]:
    """Send one reaction per emoji, without waiting for answers; their client_msg_ids."""
    return [await socket.react(channel_id, target, e) for e in emoji]


async def outcomes(socket: Session, cmids: list[str]) -> dict[str, str]:
    """Each reaction's answer on its socket: "accepted", or the error code."""
    answers: dict[str, str] = {}
    while len(answers) < len(cmids):
        frame = await socket.next(30.0)
        if frame["type"] == "accepted" and frame["client_msg_id"] in cmids:
            answers[frame["client_msg_id"]] = "accepted"
        elif frame["type"] == "error" and frame.get("ref") in cmids:
            answers[frame["ref"]] = frame["code"]
    return answers


async def reactions_of(socket: Session, cmids: set[str]) -> dict[str, Frame]:
    """The `reaction` frame of each of these client_msg_ids, once the socket has them all."""
    found: dict[str, Frame] = {}

    def scan() -> None:
        for f in socket.frames or []:
            if f["type"] == "reaction" and f["client_msg_id"] in cmids:
                found[f["client_msg_id"]] = f

    scan()
    while len(found) < len(cmids):
        await socket.next(30.0)
        scan()
    return found


async def a_message(api: Api, owner: Login, members: list[Login]) -> tuple[str, str, Session]:
    group = await api.group(owner, [m.user_id for m in members])
    socket = await api.connect(owner)
    await socket.accepted(await socket.send_message(group, "react to me"))
    (target,) = [m["message_id"] for m in await socket.collect_messages(group, 1)]
    return group, target, socket


async def race(
    api: Api,
    viewer: Login,
    sockets: list[Session],
    group: str,
    target: str,
    emoji: list[list[str]],
) -> tuple[dict[str, Any], dict[str, Frame]]:
    """Every socket sends its emoji at once. Returns the message as history shows it when
    every accepted reaction has come back, and the reaction frames of the accepted ones."""
    sent = await asyncio.gather(
        *(react_all(s, group, target, e) for s, e in zip(sockets, emoji, strict=True))
    )
    answers: dict[str, str] = {}
    for socket, cmids in zip(sockets, sent, strict=True):
        answers.update(await outcomes(socket, cmids))
    # Refused before being accepted only for the caps, judged on what was stored then.
    assert set(answers.values()) <= {"accepted", "invalid"}, answers
    accepted = {cmid for cmid, answer in answers.items() if answer == "accepted"}
    frames = await reactions_of(sockets[0], accepted)  # every member gets every reaction
    message = (await history_view(api, viewer, group))[target]
    return message, frames


def check_every_accepted_reaction(
    message: dict[str, Any], frames: dict[str, Frame], refusal: str
) -> None:
    """Each accepted reaction is on the message, or was refused (and so is not on it)."""
    reactions: dict[str, list[str]] = message.get("reactions", {})
    for frame in frames.values():
        on = frame["sender_id"] in reactions.get(frame["emoji"], [])
        if frame.get("refused"):
            assert (frame["refused"], frame["removed"], on) == (refusal, True, False), frame
        else:
            assert (frame["removed"], on) == (False, True), frame


async def test_one_users_devices_reacting_at_once_get_exactly_the_per_user_cap(
    api: Api,
) -> None:
    owner, other = await api.new_device("rl"), await api.new_device("rl")
    phone, laptop = [await api.add_device(owner.username) for _ in range(2)]
    group, target, first = await a_message(api, owner, [other])
    sockets = [first, await api.connect(phone), await api.connect(laptop)]
    watcher = await api.connect(other)

    # Three devices, 25 different emoji each, at once: 75 different emoji from one user.
    emoji = [EMOJI[25 * d : 25 * (d + 1)] for d in range(3)]
    message, frames = await race(api, owner, sockets, group, target, emoji)

    mine = {e for e, who in message["reactions"].items() if owner.user_id in who}
    assert len(mine) == MAX_REACTIONS_PER_USER
    check_every_accepted_reaction(message, frames, "user_limit")
    assert len([f for f in frames.values() if not f.get("refused")]) == MAX_REACTIONS_PER_USER
    # Every device that applies the frames it got (refused ones take back nothing) shows
    # what history shows.
    for socket in (*sockets, watcher):
        await reactions_of(socket, set(frames))
        assert view(socket.frames or [], group)[target] == message


async def test_many_users_reacting_at_once_fill_a_message_to_exactly_the_cap(api: Api) -> None:
    owner = await api.new_device("rm")
    members = [await api.new_device("rm") for _ in range(3)]
    group, target, first = await a_message(api, owner, members)
    sockets = [first] + [await api.connect(m) for m in members]

    # Four users, 20 different emoji each (80 in all), at once.
    emoji = [EMOJI[20 * u : 20 * (u + 1)] for u in range(4)]
    message, frames = await race(api, owner, sockets, group, target, emoji)

    assert len(message["reactions"]) == MAX_REACTIONS_PER_MESSAGE
    check_every_accepted_reaction(message, frames, "message_limit")
    for socket in sockets:
        await reactions_of(socket, set(frames))
        assert view(socket.frames or [], group)[target] == message


async def test_reactions_beyond_the_stored_caps_are_refused_before_they_are_accepted(
    api: Api,
) -> None:
    owner = await api.new_device("rc")
    members = [await api.new_device("rc") for _ in range(3)]
    group, target, o = await a_message(api, owner, members)
    b, c, d = [await api.connect(m) for m in members]

    async def react_in_turn(socket: Session, emoji: list[str]) -> None:
        for e in emoji:
            cmid = await socket.react(group, target, e)
            await socket.accepted(cmid)
            await reactions_of(socket, {cmid})  # stored: the next is judged with it

    await react_in_turn(o, EMOJI[:MAX_REACTIONS_PER_USER])
    cmid = await o.react(group, target, EMOJI[MAX_REACTIONS_PER_USER])
    error = await o.until(lambda f: f["type"] == "error" and f.get("ref") == cmid)
    assert error["code"] == "invalid"
    assert error["message"] == "you may put at most 20 different emoji on a message"
    # Again with one of one's own is no new emoji; taking one back makes room for another.
    await react_in_turn(o, [EMOJI[0]])
    cmid = await o.react(group, target, EMOJI[0], removed=True)
    await o.accepted(cmid)
    await reactions_of(o, {cmid})
    await react_in_turn(o, [EMOJI[MAX_REACTIONS_PER_USER]])

    # Others fill the message to 50 different emoji; the 51st is refused, for anyone.
    await react_in_turn(b, EMOJI[100:120])
    await react_in_turn(c, EMOJI[120:130])
    assert await refused(d, await d.react(group, target, EMOJI[130])) == "invalid"
    error = [f for f in d.frames or [] if f["type"] == "error"][-1]
    assert error["message"] == "a message takes at most 50 different emoji"
    # An emoji the message has already is still welcome.
    await react_in_turn(d, [EMOJI[100]])

    message = (await history_view(api, owner, group))[target]
    assert len(message["reactions"]) == MAX_REACTIONS_PER_MESSAGE
    assert message["reactions"][EMOJI[100]] == sorted([members[0].user_id, members[2].user_id])
    assert EMOJI[0] not in message["reactions"] and EMOJI[130] not in message["reactions"]
