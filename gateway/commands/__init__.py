"""The gateway's commands: one function per thing a client can do, shared by every entry point.

`gateway/http_api.py` (HTTP routes) and `gateway/handlers.py` (WebSocket frames, parsed by
`gateway/frames.py`) take their input and call a command here; nothing else decides what a
command does. Each command takes the gateway's `Services` first and the caller's `Device` next
(sign-up and log-in have none yet), validates everything before it changes anything, and raises
`ApiError` for the client. A command publishes its events only after its store writes committed
(Zulip's rule): a consumer that sees the event can read the state it describes.

| module        | commands                                                         |
|---------------|------------------------------------------------------------------|
| `accounts`    | sign_up, log_in, authenticate, renew_token, list_devices,        |
|               | log_out, revoke_device, revoke_all_devices                       |
| `channels`    | open_direct, create_group, list_channels, add_member,            |
|               | remove_member, set_role, history, pins                           |
| `messages`    | send, change (edit, delete, react, pin, unpin), ack              |
| `export`      | export_data                                                      |
| `notifications` | set_notifications                                              |
| `friends`     | befriend, unfriend, friend_list                                  |
| `invites`     | create_invite, list_invites, revoke_invite, preview, join        |
| `presence`    | watch, look_up                                                   |
| `push`        | register_endpoint, remove_endpoint, list_endpoints               |
| `search`      | search                                                           |
| `moderation`  | report, channel_reports                                          |
| `admin`       | list_reports, suspend, unsuspend, delete_messages (the operator) |
"""
