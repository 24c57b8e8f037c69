"""Protocol limits shared by every entry point (SPEC §4)."""

MAX_TEXT_CHARS = 100_000
MAX_CLIENT_MSG_ID_CHARS = 64
# The largest frame read whole: a 100,000-character text in any valid JSON encoding fits, the
# largest being 100,000 astral characters escaped as surrogate pairs (12 bytes each, 1.2 MB).
MAX_FRAME_BYTES = 1536 * 1024
MAX_GROUP_MEMBERS = 100
HISTORY_LIMIT_DEFAULT = 50
HISTORY_LIMIT_MAX = 100
MAX_HELLO_CURSORS = 10_000  # channels a hello may name a cursor for
MAX_PRESENCE_USER_IDS = 1_000  # ids one presence.subscribe may list (the setting caps it lower)
MAX_SEARCH_QUERY_CHARS = 200  # `q` of GET /v1/search, in code points
SEARCH_LIMIT_DEFAULT = 20
SEARCH_LIMIT_MAX = 100
# Typing: a client repeats `typing` while the user types; the server relays at most one per
# device and channel every TYPING_REPEAT_MS, and an indicator expires TYPING_TTL_MS after the
# keystroke that caused it unless repeated.
TYPING_REPEAT_MS = 2_000
TYPING_TTL_MS = 6_000
UNREAD_COUNT_CAP = 100  # unread counts are exact up to this many, and this many beyond it
MAX_EMOJI_CHARS = 16  # a reaction: one emoji, flags and skin tones and joiners included
MAX_REACTIONS_PER_MESSAGE = 50  # distinct emoji on one message
MAX_REACTIONS_PER_USER = 20  # distinct emoji one user puts on one message
MAX_PINS_PER_CHANNEL = 50  # messages pinned in one channel at once
MAX_QUOTE_CHARS = 200  # what a reply shows of the text of the message it answers

# A push endpoint's token (the handle a provider gave the device), in characters.
MAX_PUSH_TOKEN_CHARS = 4096
MAX_REPORT_NOTE_CHARS = 500  # a report's note, in code points
REPORTS_LIMIT_MAX = 100  # reports per page (a group's, or the operator's)
BULK_DELETE_LIMIT_MAX = 500  # messages one call of the operator's bulk delete deletes

# Invite links to groups: usable links per group at once, the longest a link may live, and
# the most uses one may be given.
MAX_GROUP_INVITES = 50
MAX_INVITE_TTL_S = 30 * 24 * 3600
MIN_INVITE_TTL_S = 60
MAX_INVITE_USES = 1000

# Mentions: the users a message's `@username`s name, resolved by the pipeline in the channel's
# order (schemas/mentions.py); at most this many per message, the first ones in the text.
MAX_MENTIONS = 50
