// Logs in and sends one message to a user:
//   PARLEY_PASSWORD=… node --experimental-websocket examples/send.js alice bob "hello bob"
import { Client } from "@parley/client";

const [username, to, text] = process.argv.slice(2);
const url = process.env.PARLEY_URL || "http://127.0.0.1:8080";
const client = await Client.logIn(url, username, process.env.PARLEY_PASSWORD);
const { user_id } = await client.api.findUser(to);
const { channel_id } = await client.api.openDirect(user_id);
await client.connect();
const message = await client.send(channel_id, text);
console.log(`sent ${message.message_id} at ${message.sent_at}`);
client.close();
