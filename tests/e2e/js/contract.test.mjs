// The wire contract (shared/API.md) checked from the official socket.io-client against a real
// server: NOTIFY_URL (a gunicorn server), NOTIFY_JWT_SECRET, NOTIFY_API_KEY; NOTIFY_URL_2 (another
// process sharing its Redis) adds the cross-process checks.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  URL,
  call,
  connect,
  connected,
  next,
  received,
  refusal,
  sign,
  sleep,
  socketFor,
  uid,
  webhook,
} from "./helpers.mjs";

const NOTIFICATION_KEYS = [
  "createdAt",
  "data",
  "deliveredAt",
  "id",
  "message",
  "readAt",
  "recipientId",
  "senderId",
  "status",
  "type",
];
const QUIET_MS = 400;

function assertNotification(notification, expected = {}) {
  assert.deepEqual(Object.keys(notification).sort(), NOTIFICATION_KEYS);
  assert.equal(typeof notification.id, "number");
  assert.match(notification.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  for (const [key, value] of Object.entries(expected)) {
    assert.deepEqual(notification[key], value, key);
  }
}

describe("handshake", () => {
  test("a valid token in auth.token connects, with or without a Bearer prefix", async () => {
    const user = uid();
    const plain = await connect(user);
    assert.equal(plain.connected, true);
    const bearer = await connect(user, { auth: { token: `Bearer ${sign(user)}` } });
    assert.equal(bearer.connected, true);
  });

  test("an integer sub is accepted", async () => {
    const socket = await connect(1234567);
    assert.equal(socket.connected, true);
  });

  const refusals = [
    ["no auth at all", undefined, "token_missing"],
    ["no token", {}, "token_missing"],
    ["an empty token", { token: "" }, "token_missing"],
    ["a bare Bearer", { token: "Bearer " }, "token_missing"],
    ["garbage", { token: "not-a-jwt" }, "token_invalid"],
    ["a token that is not a string", { token: 12345 }, "token_invalid"],
    ["another key", () => ({ token: sign(uid(), {}, { secret: "x".repeat(40) }) }), "token_invalid"],
    ["alg none", () => ({ token: sign(uid(), {}, { alg: "none" }) }), "token_invalid"],
    ["no sub", () => ({ token: sign(undefined) }), "token_invalid"],
    ["not yet valid", () => ({ token: sign(uid(), { nbf: now() + 3600 }) }), "token_invalid"],
    ["expired", () => ({ token: sign(uid(), { iat: now() - 7200, exp: now() - 3600 }) }), "token_expired"],
  ];
  for (const [name, auth, code] of refusals) {
    test(`refused, ${name}: err.message "unauthorized", err.data.code ${code}`, async () => {
      const err = await refusal(typeof auth === "function" ? auth() : auth);
      assert.equal(err.message, "unauthorized");
      assert.equal(err.data?.code, code);
    });
  }

  for (const transports of [["websocket"], ["polling"]]) {
    test(`a namespace nobody serves: err.message "Invalid namespace" (${transports})`, async () => {
      const user = uid();
      const err = await refusal({ token: sign(user) }, { url: `${URL()}/admin`, transports });
      assert.equal(err.message, "Invalid namespace");
    });
  }
});

function now() {
  return Math.floor(Date.now() / 1000);
}

describe("send_notification", () => {
  test("success ack carries the stored notification; every socket of the recipient gets it", async () => {
    const sender = uid("sender");
    const recipient = uid("recipient");
    const phone = await connect(recipient);
    const laptop = await connect(recipient);
    const socket = await connect(sender);
    const ack = await call(socket, "send_notification", {
      recipientId: recipient,
      message: "  Hello from JS  ",
      type: "chat.message",
      data: { room: 7 },
    });
    assert.equal(ack.success, true, JSON.stringify(ack));
    assertNotification(ack.notification, {
      recipientId: recipient,
      senderId: sender,
      type: "chat.message",
      message: "Hello from JS",
      data: { room: 7 },
      readAt: null,
    });
    const id = ack.notification.id;
    for (const device of [phone, laptop]) {
      const [pushed] = (await received(device, [id])).filter((n) => n.id === id);
      assertNotification(pushed, { id, recipientId: recipient, senderId: sender });
    }
    await sleep(QUIET_MS);
    assert.deepEqual(socket.received, [], "the sender is not the recipient");
    assert.equal(phone.received.filter((n) => n.id === id).length, 1, "pushed once per socket");
  });

  test("type defaults to message and data to null", async () => {
    const socket = await connect(uid());
    const ack = await call(socket, "send_notification", { recipientId: uid(), message: "hi" });
    assert.equal(ack.success, true, JSON.stringify(ack));
    assert.equal(ack.notification.type, "message");
    assert.equal(ack.notification.data, null);
    assert.equal(ack.notification.status, "pending", "the recipient is offline");
  });

  test("validation_error ack names each bad field in details", async () => {
    const socket = await connect(uid());
    const ack = await call(socket, "send_notification", { recipientID: "x", message: "   " });
    assert.equal(ack.success, false);
    assert.equal(ack.code, "validation_error");
    assert.equal(typeof ack.error, "string");
    assert.ok(ack.details && typeof ack.details === "object", JSON.stringify(ack));
    for (const field of ["recipientID", "recipientId", "message"]) {
      assert.ok(field in ack.details, `details names ${field}: ${JSON.stringify(ack.details)}`);
    }
    assert.equal(socket.connected, true);
  });

  const malformed = [
    ["a string", "hello"],
    ["an array", [1, 2]],
    ["null", null],
    ["a too long message", { recipientId: "u-1", message: "x".repeat(2001) }],
    ["a bad recipient", { recipientId: "no spaces allowed", message: "m" }],
    ["data not an object", { recipientId: "u-1", message: "m", data: [1] }],
  ];
  for (const [name, payload] of malformed) {
    test(`a malformed payload (${name}) gets a validation_error ack`, async () => {
      const socket = await connect(uid());
      const ack = await call(socket, "send_notification", payload);
      assert.equal(ack.success, false);
      assert.equal(ack.code, "validation_error", JSON.stringify(ack));
      assert.equal(socket.connected, true);
    });
  }

  test("a webhook reaches every socket of the recipient with senderId null", async () => {
    const user = uid();
    const sockets = [await connect(user), await connect(user)];
    const sent = await webhook(user, "from the backend");
    for (const socket of sockets) {
      const [pushed] = (await received(socket, [sent.id])).filter((n) => n.id === sent.id);
      assertNotification(pushed, { senderId: null, message: "from the backend" });
    }
  });

  test("cross-process: sockets on two servers both get it", { skip: !process.env.NOTIFY_URL_2 }, async () => {
    const user = uid();
    const here = await connect(user);
    const there = await connect(user, { url: process.env.NOTIFY_URL_2 });
    const sender = await connect(uid("sender"));
    const ack = await call(sender, "send_notification", { recipientId: user, message: "across" });
    assert.equal(ack.success, true, JSON.stringify(ack));
    assert.equal(ack.notification.status, "delivered");
    await received(here, [ack.notification.id]);
    await received(there, [ack.notification.id]);
  });
});

describe("replay", () => {
  test("pending notifications are replayed on connect, oldest first, then not again", async () => {
    const user = uid();
    const first = await webhook(user, "one");
    const second = await webhook(user, "two");
    assert.equal(first.status, "pending");
    const socket = await connect(user);
    const got = await received(socket, [first.id, second.id]);
    assert.deepEqual(
      got.map((n) => n.id),
      [first.id, second.id],
    );
    assert.deepEqual(
      got.map((n) => n.message),
      ["one", "two"],
    );
    socket.disconnect();
    const again = await connect(user);
    await sleep(QUIET_MS);
    assert.deepEqual(again.received, [], "delivered ones are not replayed without lastId");
  });

  test("auth.lastId replays every notification after it, delivered or not", async () => {
    const user = uid();
    const live = await connect(user);
    const a = await webhook(user, "a");
    const b = await webhook(user, "b");
    await received(live, [a.id, b.id]);
    live.disconnect();
    const c = await webhook(user, "c"); // sent while offline
    const resumed = await connect(user, { auth: { token: sign(user), lastId: a.id } });
    const got = await received(resumed, [b.id, c.id]);
    assert.deepEqual(
      got.map((n) => n.id),
      [b.id, c.id],
    );
  });
});

describe("mark_read", () => {
  test("ack counts the rows; the user's other socket gets notification_read", async () => {
    const user = uid();
    const a = await webhook(user, "a");
    const b = await webhook(user, "b");
    const phone = await connect(user);
    const laptop = await connect(user);
    await received(phone, [a.id, b.id]);
    const readOnLaptop = next(laptop, "notification_read");
    const readOnPhone = [];
    phone.on("notification_read", (payload) => readOnPhone.push(payload));
    const ack = await call(phone, "mark_read", { ids: [a.id] });
    assert.deepEqual(ack, { success: true, updated: 1 });
    assert.deepEqual(await readOnLaptop, { ids: [a.id] });
    const allOnLaptop = next(laptop, "notification_read", (p) => p.all === true);
    const all = await call(phone, "mark_read", { all: true });
    assert.deepEqual(all, { success: true, updated: 1 });
    assert.deepEqual(await allOnLaptop, { all: true });
    await sleep(QUIET_MS);
    assert.deepEqual(readOnPhone, [], "the socket that marked them is not told again");
  });

  test("someone else's ids are not touched", async () => {
    const owner = uid("owner");
    const theirs = await webhook(owner, "private");
    const other = await connect(uid("other"));
    const ack = await call(other, "mark_read", { ids: [theirs.id] });
    assert.deepEqual(ack, { success: true, updated: 0 });
  });

  test("a malformed mark_read gets a validation_error ack", async () => {
    const socket = await connect(uid());
    const ack = await call(socket, "mark_read", { ids: "1,2" });
    assert.equal(ack.success, false);
    assert.equal(ack.code, "validation_error");
  });
});

describe("transports", () => {
  // A socket on that one transport receives a webhook's push; the user and the socket.
  async function pushedOver(transport) {
    const user = uid();
    const socket = await connect(user, { transports: [transport] });
    assert.equal(socket.io.engine.transport.name, transport);
    const sent = await webhook(user, `over ${transport}`);
    await received(socket, [sent.id]);
    return { user, socket };
  }

  test("websocket only", async () => {
    await pushedOver("websocket");
  });

  test("polling only", async () => {
    const { user, socket } = await pushedOver("polling");
    const ack = await call(socket, "send_notification", { recipientId: user, message: "self" });
    assert.equal(ack.success, true, JSON.stringify(ack));
  });

  test("polling first, then upgraded to websocket", async () => {
    const user = uid();
    const socket = socketFor(URL(), { token: sign(user) }, { transports: ["polling", "websocket"] });
    let opened;
    const upgraded = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no upgrade within 5000 ms")), 5000);
      socket.io.on("open", () => {
        opened = socket.io.engine.transport.name;
        socket.io.engine.on("upgrade", (transport) => {
          clearTimeout(timer);
          resolve(transport.name);
        });
      });
    });
    await connected(socket);
    assert.equal(opened, "polling", "the session opened over polling");
    assert.equal(await upgraded, "websocket");
    assert.equal(socket.io.engine.transport.name, "websocket");
    const sent = await webhook(user, "after the upgrade");
    await received(socket, [sent.id]);
    const ack = await call(socket, "send_notification", { recipientId: uid(), message: "m" });
    assert.equal(ack.success, true, JSON.stringify(ack));
  });
});
