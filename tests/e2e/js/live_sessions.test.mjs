// Live sessions and complete catch-up (shared/API.md: "Live sessions", replay_complete,
// GET /api/notifications?after=), against two processes sharing Redis started with a small
// REPLAY_LIMIT and a short JWT_LEEWAY: NOTIFY_LIVE_URL, NOTIFY_LIVE_URL_2, NOTIFY_REPLAY_LIMIT,
// NOTIFY_JWT_LEEWAY, NOTIFY_REFRESH_WINDOW (the servers' SESSION_REFRESH_WINDOW).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { call, connect, connected, env, next, request, sign, socketFor, uid, webhook } from "./helpers.mjs";

const url = () => env("NOTIFY_LIVE_URL");
const url2 = () => env("NOTIFY_LIVE_URL_2");
const REPLAY_LIMIT = Number(env("NOTIFY_REPLAY_LIMIT"));

/** Every notification of ``token``'s user after ``after``, paged with ?after= (oldest first). */
async function catchUp(base, token, after, limit = 3) {
  const got = [];
  let cursor = after;
  while (cursor !== null) {
    const res = await request("GET", `${base}/api/notifications?after=${cursor}&limit=${limit}`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    got.push(...res.body.notifications);
    cursor = res.body.nextCursor;
    if (cursor !== null) assert.equal(cursor, got.at(-1).id, "nextCursor is the page's last id");
  }
  return got;
}

describe("replay_complete and catch-up", () => {
  test("a replay cut at REPLAY_LIMIT says truncated; paging with after= fetches the rest once", async () => {
    const user = uid();
    const token = sign(user);
    const sent = [];
    for (let i = 0; i < REPLAY_LIMIT * 2 + 1; i += 1) sent.push(await webhook(user, `n${i}`, {}, url()));
    const socket = socketFor(url(), { token });
    const complete = next(socket, "replay_complete");
    await connected(socket);
    const first = await complete;
    assert.deepEqual(first, { count: REPLAY_LIMIT, truncated: true, lastId: sent[REPLAY_LIMIT - 1].id });
    assert.deepEqual(
      socket.received.map((n) => n.id),
      sent.slice(0, REPLAY_LIMIT).map((n) => n.id),
      "replay_complete comes after the replayed notifications",
    );
    // The client loop: page the rest with after= before saving a new lastId.
    const rest = await catchUp(url(), token, first.lastId);
    assert.deepEqual(
      rest.map((n) => n.id),
      sent.slice(REPLAY_LIMIT).map((n) => n.id),
    );
    // Saved lastId = the last one fetched. The ones fetched over HTTP are still pending (a GET
    // changes nothing), so a reconnect may replay them again: duplicates, never anything new.
    const resumed = socketFor(url2(), { token, lastId: rest.at(-1).id });
    const again = next(resumed, "replay_complete");
    await connected(resumed);
    const second = await again;
    const fetched = new Set(rest.map((n) => n.id));
    assert.ok(resumed.received.every((n) => fetched.has(n.id)), JSON.stringify(second));
    assert.equal(second.count, resumed.received.length);
  });

  test("an untruncated replay says so, with the highest id replayed", async () => {
    const user = uid();
    const one = await webhook(user, "one", {}, url());
    const socket = socketFor(url(), { token: sign(user) });
    const complete = next(socket, "replay_complete");
    await connected(socket);
    assert.deepEqual(await complete, { count: 1, truncated: false, lastId: one.id });
  });
});
