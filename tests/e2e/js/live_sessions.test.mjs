// Live sessions and complete catch-up (shared/API.md: "Live sessions", replay_complete,
// GET /api/notifications?after=), against two processes sharing Redis started with a small
// REPLAY_LIMIT and a short JWT_LEEWAY: NOTIFY_LIVE_URL, NOTIFY_LIVE_URL_2, NOTIFY_REPLAY_LIMIT,
// NOTIFY_JWT_LEEWAY, NOTIFY_REFRESH_WINDOW (the servers' SESSION_REFRESH_WINDOW).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { call, connect, connected, env, next, refusal, request, sign, socketFor, uid, webhook } from "./helpers.mjs";

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

const LEEWAY = Number(env("NOTIFY_JWT_LEEWAY"));
const WINDOW = Number(env("NOTIFY_REFRESH_WINDOW"));
const nowSeconds = () => Math.floor(Date.now() / 1000);
const API_KEY = () => env("NOTIFY_API_KEY");

/** Resolves with the disconnect reason, rejecting after ``ms``. */
function disconnected(socket, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still connected after ${ms} ms`)), ms);
    socket.once("disconnect", (reason) => {
      clearTimeout(timer);
      resolve(reason);
    });
  });
}

function revoke(base, body) {
  return request("POST", `${base}/webhook/revoke`, { body, headers: { "X-API-Key": API_KEY() } });
}

const isoOf = (seconds) => new Date(seconds * 1000).toISOString();

describe("expiry", () => {
  for (const transport of ["websocket", "polling"]) {
    test(`over ${transport}: token_expiring at once, session_ended and a server disconnect at exp + leeway`, async () => {
      const user = uid();
      const exp = nowSeconds() + 2;
      const socket = socketFor(url(), { token: sign(user, { exp }) }, { transports: [transport] });
      const warning = next(socket, "token_expiring");
      const ended = next(socket, "session_ended", () => true, (2 + LEEWAY + 3) * 1000);
      const gone = disconnected(socket, (2 + LEEWAY + 3) * 1000);
      await connected(socket);
      assert.equal(socket.io.engine.transport.name, transport);
      assert.deepEqual(await warning, { expiresAt: isoOf(exp) }, `less than ${WINDOW} s left: at once`);
      assert.deepEqual(await ended, { code: "token_expired" });
      const at = Date.now() / 1000;
      assert.ok(at >= exp + LEEWAY - 0.05, `ended ${at - exp - LEEWAY} s before the deadline`);
      assert.ok(at <= exp + LEEWAY + 1, `ended ${at - exp - LEEWAY} s after the deadline`);
      assert.equal(await gone, "io server disconnect");
      assert.equal(socket.active, false, "the client does not reconnect by itself");
      // Offline at once: a send from now on waits as pending.
      const later = await webhook(user, "after the end", {}, url2());
      assert.equal(later.status, "pending");
    });
  }
});

describe("refresh_token", () => {
  test("a new token of the same user moves the deadline; its expiresAt is acked", async () => {
    const user = uid();
    const exp = nowSeconds() + 2;
    const socket = socketFor(url(), { token: sign(user, { exp }) });
    const warning = next(socket, "token_expiring");
    await connected(socket);
    await warning;
    const later = nowSeconds() + 3600;
    const ack = await call(socket, "refresh_token", { token: sign(user, { exp: later }) });
    assert.deepEqual(ack, { success: true, expiresAt: isoOf(later) });
    const ended = [];
    socket.on("session_ended", (payload) => ended.push(payload));
    await new Promise((resolve) => setTimeout(resolve, (exp + LEEWAY + 1.2) * 1000 - Date.now()));
    assert.equal(socket.connected, true);
    assert.deepEqual(ended, []);
    const forever = await call(socket, "refresh_token", { token: sign(user, { exp: undefined }) });
    assert.deepEqual(forever, { success: true, expiresAt: null });
  });

  test("every refusal has the contract's code and changes nothing", async () => {
    const user = uid();
    const exp = nowSeconds() + 3;
    const socket = await connect(user, { url: url(), auth: { token: sign(user, { exp }) } });
    // A token of this user revoked meanwhile: issued before the cut-off.
    const old = sign(user, { iat: nowSeconds() - 20 });
    const cutoff = isoOf(nowSeconds() - 10);
    assert.equal((await revoke(url(), { userId: user, before: cutoff })).status, 200);
    const cases = [
      ["garbage", "not-a-jwt", "unauthorized", "token_invalid"],
      ["another key", sign(user, {}, { secret: "y".repeat(40) }), "unauthorized", "token_invalid"],
      ["expired", sign(user, { iat: nowSeconds() - 7200, exp: nowSeconds() - 3600 }), "unauthorized", "token_expired"],
      ["revoked", old, "unauthorized", "token_revoked"],
      ["another user's", sign(uid("mallory")), "forbidden", undefined],
    ];
    for (const [name, token, code, problem] of cases) {
      const ack = await call(socket, "refresh_token", { token });
      assert.equal(ack.success, false, name);
      assert.equal(ack.code, code, `${name}: ${JSON.stringify(ack)}`);
      assert.equal(typeof ack.error, "string");
      assert.deepEqual(ack.details, problem ? { token: problem } : undefined, name);
    }
    const bad = await call(socket, "refresh_token", "just a string");
    assert.equal(bad.code, "validation_error");
    // Nothing changed: the first deadline still ends the socket.
    assert.deepEqual(await next(socket, "session_ended", () => true, (3 + LEEWAY + 2) * 1000), {
      code: "token_expired",
    });
  });
});

describe("revocation", () => {
  test("ends the user's sockets on both processes, counts them, refuses the token everywhere", async () => {
    const user = uid();
    const old = sign(user, { iat: nowSeconds() - 20 });
    const here = await connect(user, { url: url(), auth: { token: old } });
    const there = await connect(user, { url: url2(), auth: { token: old }, transports: ["polling"] });
    const bystander = await connect(uid(), { url: url2() });
    const endings = [here, there].map((s) => next(s, "session_ended"));
    const gone = [here, there].map((s) => disconnected(s, 3000));
    const res = await revoke(url(), { userId: user, before: isoOf(nowSeconds() - 10) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { success: true, disconnected: 2 });
    assert.deepEqual(await Promise.all(endings), [{ code: "token_revoked" }, { code: "token_revoked" }]);
    assert.deepEqual(await Promise.all(gone), ["io server disconnect", "io server disconnect"]);
    assert.equal(bystander.connected, true);
    for (const base of [url(), url2()]) {
      const err = await refusal({ token: old }, { url: base });
      assert.equal(err.message, "unauthorized");
      assert.equal(err.data?.code, "token_revoked");
      const inbox = await request("GET", `${base}/api/notifications`, {
        headers: { Authorization: `Bearer ${old}` },
      });
      assert.equal(inbox.status, 401);
      assert.deepEqual(inbox.body.details, { token: "token_revoked" });
    }
    // Signed in again: a token issued after the cut-off connects.
    const fresh = await connect(user, { url: url2() });
    assert.equal(fresh.connected, true);
  });

  test("a bad revocation is refused in the contract's shape", async () => {
    const res = await revoke(url(), { userId: "has space", before: "soon" });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, "validation_error");
    assert.deepEqual(Object.keys(res.body.details).sort(), ["before", "userId"]);
    const nokey = await request("POST", `${url()}/webhook/revoke`, { body: { userId: uid() } });
    assert.equal(nokey.status, 401);
  });
});
