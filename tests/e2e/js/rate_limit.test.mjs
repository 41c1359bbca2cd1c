// The per-user socket event limit, against a server started with a low limit:
// NOTIFY_LIMITED_URL and NOTIFY_SOCKET_RATE_LIMIT_POINTS (its SOCKET_RATE_LIMIT_POINTS; the
// duration must be long enough, e.g. 60 s, that the window does not roll over during the test).
import assert from "node:assert/strict";
import { test } from "node:test";
import { call, connect, uid } from "./helpers.mjs";

const url = process.env.NOTIFY_LIMITED_URL;
const points = Number(process.env.NOTIFY_SOCKET_RATE_LIMIT_POINTS ?? 0);
const skip = !url || !points ? "NOTIFY_LIMITED_URL / NOTIFY_SOCKET_RATE_LIMIT_POINTS not set" : false;

test("over the limit: rate_limited ack with retryAfter, the socket stays connected, all of the user's sockets share it", { skip }, async () => {
  const user = uid();
  const first = await connect(user, { url });
  const second = await connect(user, { url });
  const payload = { recipientId: uid("recipient"), message: "counted" };
  for (let i = 0; i < points; i += 1) {
    // Alternate sockets: the limit is the user's, not the socket's.
    const ack = await call(i % 2 ? second : first, "send_notification", payload);
    assert.equal(ack.success, true, `event ${i + 1} of ${points}: ${JSON.stringify(ack)}`);
  }
  for (const socket of [first, second]) {
    const ack = await call(socket, "send_notification", payload);
    assert.equal(ack.success, false);
    assert.equal(ack.code, "rate_limited", JSON.stringify(ack));
    assert.equal(typeof ack.error, "string");
    assert.ok(Number.isInteger(ack.retryAfter) && ack.retryAfter > 0, JSON.stringify(ack));
    const read = await call(socket, "mark_read", { all: true });
    assert.equal(read.code, "rate_limited", "every client event counts");
    assert.equal(socket.connected, true);
  }
  // Another user is not limited by this one.
  const other = await connect(uid(), { url });
  const ack = await call(other, "send_notification", payload);
  assert.equal(ack.success, true, JSON.stringify(ack));
});
