// Shared helpers of the JS client suite: configuration from the environment, HS256 tokens
// signed with node:crypto, sockets that are closed after each test, deadlines on every wait.
import { createHmac, randomBytes } from "node:crypto";
import http from "node:http";
import { after, afterEach } from "node:test";
import { io } from "socket.io-client";

/** A required environment variable (the suite cannot guess a server or a secret). */
export function env(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") {
    throw new Error(`${name} is not set: see tests/e2e/js/README.md`);
  }
  return value;
}

export const URL = () => env("NOTIFY_URL");
export const WAIT_MS = Number(process.env.NOTIFY_WAIT_MS ?? 5000);

/** A user id of this test only: tests never see each other's notifications. */
export function uid(name = "user") {
  return `${name}-${randomBytes(5).toString("hex")}`;
}

const b64url = (value) => Buffer.from(value).toString("base64url");

/** A compact JWS, HS256 by default; ``claims`` are merged over {sub, iat, exp: +1 h}. */
export function sign(sub, claims = {}, { secret = env("NOTIFY_JWT_SECRET"), alg = "HS256" } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const payload = { ...(sub === undefined ? {} : { sub }), iat: now, exp: now + 3600, ...claims };
  const head = `${b64url(JSON.stringify({ alg, typ: "JWT" }))}.${b64url(JSON.stringify(payload))}`;
  if (alg === "none") return `${head}.`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

const opened = new Set();

/** Every socket made by a test is closed after it, passed or failed. */
afterEach(() => {
  for (const socket of opened) socket.disconnect();
  opened.clear();
});
after(() => {
  for (const socket of opened) socket.disconnect();
});

/** A socket, not yet connected (autoConnect off), with reconnection off unless asked. */
export function socketFor(url, auth, options = {}) {
  const socket = io(url, { auth, forceNew: true, reconnection: false, autoConnect: false, ...options });
  opened.add(socket);
  // Record every new_notification from the start: replay arrives right after "connect".
  socket.received = [];
  socket.on("new_notification", (notification) => socket.received.push(notification));
  return socket;
}

/** Resolves with the socket once connected; rejects with the connect_error or at the deadline. */
export function connected(socket, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`not connected within ${ms} ms`));
    }, ms);
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    const onError = (err) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
    };
    socket.on("connect", onConnect);
    socket.on("connect_error", onError);
    socket.connect();
  });
}

/** A connected socket of ``user`` (token signed here unless ``auth.token`` is given). */
export async function connect(user, { url = URL(), auth = {}, ...options } = {}) {
  const socket = socketFor(url, { token: sign(user), ...auth }, options);
  return connected(socket);
}

/** The connect_error of a handshake that must be refused (fails if it connects instead). */
export async function refusal(auth, { url = URL(), ...options } = {}) {
  const socket = socketFor(url, auth, options);
  try {
    await connected(socket);
  } catch (err) {
    return err;
  }
  throw new Error("the handshake was accepted");
}

/** emit with an acknowledgement, rejecting if none arrives within the deadline. */
export function call(socket, event, payload, ms = WAIT_MS) {
  return socket.timeout(ms).emitWithAck(event, payload);
}

/** The first ``event`` on ``socket`` for which ``match`` holds, within the deadline. */
export function next(socket, event, match = () => true, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, listener);
      reject(new Error(`no matching ${event} within ${ms} ms`));
    }, ms);
    const listener = (payload) => {
      if (!match(payload)) return;
      clearTimeout(timer);
      socket.off(event, listener);
      resolve(payload);
    };
    socket.on(event, listener);
  });
}

/** Resolves once ``socket.received`` holds a notification with each of ``ids``. */
export async function received(socket, ids, ms = WAIT_MS) {
  const end = Date.now() + ms;
  for (;;) {
    const have = new Set(socket.received.map((n) => n.id));
    if (ids.every((id) => have.has(id))) return socket.received;
    if (Date.now() > end) {
      throw new Error(`ids ${ids} not all received within ${ms} ms (have ${[...have]})`);
    }
    await sleep(20);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A JSON request on a connection the server closes after answering (no idle keep-alive
 * connection left to hold a stopping gunicorn worker). Resolves with {status, headers, body}.
 */
export function request(method, url, { body, headers = {} } = {}, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      url,
      {
        method,
        agent: false,
        timeout: ms,
        headers: {
          Connection: "close",
          ...(data ? { "Content-Type": "application/json" } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          let parsed = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: keep the text for the assertion message
          }
          resolve({ status: res.statusCode, headers: res.headers, body: parsed });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${url}: no answer within ${ms} ms`)));
    req.on("error", reject);
    req.end(data);
  });
}

/** POST /webhook/notify with the key; resolves with the stored notification (asserts 201). */
export async function webhook(recipientId, message = "hello", fields = {}, url = URL()) {
  const res = await request("POST", `${url}/webhook/notify`, {
    body: { recipientId, message, ...fields },
    headers: { "X-API-Key": env("NOTIFY_API_KEY") },
  });
  if (res.status !== 201) {
    throw new Error(`webhook answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  return res.body.notification;
}
