// Not run: `tsc --noEmit` checks that the declarations hold together and read as a user of the
// package writes (the README's example among them).

import {
  Api,
  ApiError,
  Client,
  ParleyError,
  apiPath,
  compareIds,
  type ChangeFrame,
  type Invite,
  type InvitePreview,
  type Message,
  type ServerFrame,
} from "@parley/client";

export async function example(url: string): Promise<void> {
  const client = await Client.logIn(url, "alice", "correct horse battery");
  const bob = await client.api.findUser("bob");
  const { channel_id } = await client.api.openDirect(bob.user_id);
  await client.connect();
  client.addEventListener("message", (event) => {
    const message: Message = (event as CustomEvent<Message>).detail;
    console.log(message.text, compareIds(message.message_id, "1"));
  });
  const sent: Message = await client.send(channel_id, "hello bob");
  const reply: Message = await client.send(channel_id, "hi", { replyTo: sent.message_id });
  const quoted: string | undefined = reply.quote?.text;
  const { messages } = await client.api.history(channel_id, { thread: sent.message_id });
  console.log(quoted, messages.length, reply.reply_count ?? 0);
  const pin: ChangeFrame = await client.pin(sent, { unpin: false });
  const { messages: pinned } = await client.api.pins(channel_id);
  console.log(pin.refused, pinned[0]?.pinned_by);
  const edit: ChangeFrame = await client.edit(sent, "hello, bob");
  await client.react(sent, "👍", { removed: false });
  console.log(edit.target_id === sent.message_id);
  client.close();
}

export async function errors(api: Api): Promise<string> {
  try {
    await api.request("GET", apiPath`/v1/channels/${"1"}/messages`);
  } catch (error) {
    if (error instanceof ApiError) return `${error.status} ${error.code}`;
    if (error instanceof ParleyError) return error.code;
  }
  return "";
}

export function frames(frame: ServerFrame): string {
  switch (frame.type) {
    case "message":
      return frame.text;
    case "error":
      return `${frame.code}: ${frame.message} (${frame.ref ?? "no ref"})`;
    case "edit":
    case "delete":
    case "reaction":
      return frame.target_id;
    default:
      return frame.type;
  }
}

export const anonymous = new Api({ url: "http://127.0.0.1:8080" });
export const custom = new Client({ url: "http://127.0.0.1:8080", token: "t", WebSocket });

export async function invites(api: Api, channelId: string): Promise<string> {
  const made: Invite = await api.createInvite(channelId, { maxUses: 1 });
  const seen: InvitePreview = await api.previewInvite(made.code ?? "");
  const { invites } = await api.invites(channelId);
  await api.revokeInvite(channelId, invites[0].invite_id);
  return `${seen.name} ${(await api.joinByInvite(made.code ?? "")).channel_id}`;
}

export async function exported(api: Api): Promise<number> {
  const response: Response = await api.exportData();
  return (await response.text()).split("\n").length;
}
