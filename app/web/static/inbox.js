// The demo inbox page: connect with a token, list notifications live, mark them read, send one.
// A static file because the CSP allows no inline script; text goes in with textContent only.
//
// The client loop of docs/EVENTS.md: connect with the saved lastId; on replay_complete with
// truncated, page the rest with GET /api/notifications?after= before saving a new lastId;
// refresh the token on token_expiring (development: a new one from /demo/token); on
// session_ended, show "signed out" (the server disconnected: the client does not reconnect).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const RANK = { pending: 0, delivered: 1, read: 2 };
  const HISTORY_LIMIT = 50;

  const items = new Map(); // id -> notification, the newest status seen wins
  let socket = null;
  let token = "";
  // The save point for reconnecting: advanced only once everything up to it has arrived.
  let lastId = 0;
  let replayDone = false;
  let catchingUp = false;
  let devLifetime = null; // seconds, when the connected token came from the development endpoint
  let devIssued = { token: null, lifetime: null }; // the last token the development button got

  function setStatus(state, text) {
    const status = $("status");
    status.dataset.state = state;
    status.textContent = text || state;
  }

  function showAuthError(text) {
    const el = $("auth-error");
    el.textContent = text || "";
    el.hidden = !text;
  }

  function unreadCount() {
    let count = 0;
    for (const n of items.values()) if (n.status !== "read") count += 1;
    return count;
  }

  function merge(notification) {
    const known = items.get(notification.id);
    if (!known || RANK[notification.status] >= RANK[known.status]) {
      items.set(notification.id, notification);
    }
  }

  function highestId() {
    let highest = lastId;
    for (const id of items.keys()) highest = Math.max(highest, id);
    return highest;
  }

  function showSession(text) {
    $("session").textContent = text || "";
  }

  /** After a truncated replay: every notification after ``after``, oldest first, then the
   * save point moves past them. Live pushes meanwhile are kept but do not move it. */
  async function catchUp(after) {
    catchingUp = true;
    try {
      let cursor = after;
      while (cursor !== null) {
        const response = await fetch(`/api/notifications?after=${cursor}&limit=100`, {
          headers: { Authorization: `Bearer ${token}` },
        });
        const body = await response.json();
        if (!response.ok || !body.success) throw new Error(body.error || response.statusText);
        body.notifications.forEach(merge);
        cursor = body.nextCursor;
      }
      lastId = highestId();
      render();
    } finally {
      catchingUp = false;
    }
  }

  function userOf(jwt) {
    try {
      const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return String(JSON.parse(atob(part)).sub);
    } catch {
      return null;
    }
  }

  async function fetchDevToken(userId, expiresIn) {
    const response = await fetch("/demo/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ userId, expiresIn }),
    });
    const body = await response.json();
    if (!response.ok || !body.success) {
      throw new Error(`${body.error} ${JSON.stringify(body.details || {})}`);
    }
    return body.token;
  }

  /** token_expiring: with a development token, get a new one and hand it to the socket. */
  async function refresh(expiresAt) {
    if (devLifetime === null || !$("dev-token-form")) {
      showSession(`session ends at ${expiresAt}: get a new token and connect again`);
      return;
    }
    const fresh = await fetchDevToken(userOf(token), devLifetime);
    const current = socket;
    if (!current) return;
    current.emit("refresh_token", { token: fresh }, (ack) => {
      if (ack && ack.success) {
        token = fresh;
        devIssued = { token: fresh, lifetime: devLifetime };
        $("token").value = fresh;
        const session = $("session");
        session.dataset.refreshes = String(Number(session.dataset.refreshes) + 1);
        showSession(`token refreshed, expires ${ack.expiresAt ?? "never"}`);
      } else {
        showSession(`refresh refused: ${ack ? `${ack.code} ${JSON.stringify(ack.details || {})}` : "no answer"}`);
      }
    });
  }

  function markLocally(ids) {
    for (const id of ids) {
      const n = items.get(id);
      if (n) items.set(id, { ...n, status: "read" });
    }
  }

  function render() {
    const list = $("notifications");
    const sorted = [...items.values()].sort((a, b) => b.id - a.id);
    list.replaceChildren(...sorted.map(renderItem));
    $("empty").hidden = sorted.length > 0;
    const count = unreadCount();
    const badge = $("badge");
    badge.textContent = String(count);
    badge.dataset.count = String(count);
    document.title = (count ? `(${count}) ` : "") + "notify-server · inbox";
    $("mark-all").disabled = !socket || !socket.connected || count === 0;
  }

  function renderItem(n) {
    const li = document.createElement("li");
    li.className = "notification " + (n.status === "read" ? "read" : "unread");
    li.dataset.id = String(n.id);
    li.dataset.status = n.status;
    const text = document.createElement("div");
    const message = document.createElement("div");
    message.className = "message";
    message.textContent = n.message;
    const meta = document.createElement("div");
    meta.className = "meta";
    const from = n.senderId === null ? "server" : n.senderId;
    meta.textContent = `#${n.id} · ${n.type} · from ${from} · ${n.createdAt} · ${n.status}`;
    text.append(message, meta);
    li.append(text);
    if (n.status !== "read") {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "mark-read";
      button.textContent = "Mark read";
      button.addEventListener("click", () => markRead({ ids: [n.id] }));
      li.append(button);
    }
    return li;
  }

  async function loadHistory() {
    const response = await fetch(`/api/notifications?limit=${HISTORY_LIMIT}`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    const body = await response.json();
    if (!response.ok || !body.success) throw new Error(body.error || response.statusText);
    body.notifications.forEach(merge);
    render();
  }

  function markRead(request) {
    if (!socket) return;
    socket.emit("mark_read", request, (ack) => {
      if (!ack || !ack.success) {
        showAuthError(`mark_read failed: ${ack ? ack.error : "no answer"}`);
        return;
      }
      if (request.all) markLocally([...items.keys()]);
      else markLocally(request.ids);
      render();
    });
  }

  function connect(event) {
    event.preventDefault();
    disconnect();
    token = $("token").value.trim();
    if (!token) return;
    devLifetime = token === devIssued.token ? devIssued.lifetime : null;
    if (typeof io !== "function") {
      showAuthError("The Socket.IO client did not load: run npm ci in app/web and reload.");
      return;
    }
    showAuthError("");
    setStatus("connecting", "connecting…");
    // auth as a function: every reconnection asks for what arrived after the newest id seen.
    socket = io({
      auth: (cb) => cb(lastId ? { token, lastId } : { token }),
    });
    socket.on("connect", () => {
      replayDone = false;
      setStatus("connected");
      $("disconnect").disabled = false;
      $("send").disabled = false;
      loadHistory().catch((error) => showAuthError(`history: ${error.message}`));
      render();
    });
    socket.on("disconnect", (reason) => {
      if ($("status").dataset.state === "signed-out") return;
      setStatus("disconnected", `disconnected (${reason})`);
      $("send").disabled = true;
      render();
    });
    socket.on("connect_error", (error) => {
      const code = error.data && error.data.code ? ` (${error.data.code})` : "";
      // A refused token will not get better by retrying; other errors are retried by the client.
      if (error.message === "unauthorized") disconnect();
      setStatus("error", "refused");
      showAuthError(`connection refused: ${error.message}${code}`);
    });
    socket.on("new_notification", (notification) => {
      merge(notification);
      if (replayDone && !catchingUp) lastId = Math.max(lastId, notification.id);
      render();
    });
    socket.on("replay_complete", (done) => {
      replayDone = true;
      if (done.truncated) {
        catchUp(done.lastId).catch((error) => showAuthError(`catch-up: ${error.message}`));
      } else {
        lastId = highestId();
      }
    });
    socket.on("token_expiring", ({ expiresAt }) => {
      refresh(expiresAt).catch((error) => showSession(`refresh failed: ${error.message}`));
    });
    socket.on("session_ended", ({ code }) => {
      // The server disconnects next; the client will not reconnect by itself.
      setStatus("signed-out", `signed out (${code})`);
      showSession(code === "token_revoked" ? "signed out: the session was revoked" : "signed out: the token expired");
      $("send").disabled = true;
    });
    socket.on("notification_read", (payload) => {
      if (payload.all) markLocally([...items.keys()]);
      else markLocally(payload.ids || []);
      render();
    });
  }

  function disconnect() {
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
      socket = null;
    }
    items.clear();
    lastId = 0;
    showSession("");
    setStatus("disconnected");
    $("disconnect").disabled = true;
    $("send").disabled = true;
    render();
  }

  async function devToken(event) {
    event.preventDefault();
    const lifetime = Number($("dev-expires").value);
    try {
      devIssued = { token: await fetchDevToken($("dev-user").value.trim(), lifetime), lifetime };
    } catch (error) {
      showAuthError(`token: ${error.message}`);
      return;
    }
    $("token").value = devIssued.token;
    showAuthError("");
  }

  function send(event) {
    event.preventDefault();
    if (!socket) return;
    const payload = {
      recipientId: $("send-recipient").value.trim(),
      message: $("send-message").value,
    };
    const result = $("send-result");
    socket.emit("send_notification", payload, (ack) => {
      if (ack && ack.success) {
        result.textContent = `Sent #${ack.notification.id} to ${ack.notification.recipientId}.`;
        result.dataset.outcome = "sent";
        $("send-message").value = "";
      } else {
        const details = ack && ack.details ? ` ${JSON.stringify(ack.details)}` : "";
        result.textContent = `Not sent: ${ack ? ack.error : "no answer"}${details}`;
        result.dataset.outcome = "failed";
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("connect-form").addEventListener("submit", connect);
    $("disconnect").addEventListener("click", disconnect);
    $("mark-all").addEventListener("click", () => markRead({ all: true }));
    $("send-form").addEventListener("submit", send);
    const devForm = $("dev-token-form");
    if (devForm) devForm.addEventListener("submit", (event) => {
      devToken(event).catch((error) => showAuthError(`token: ${error.message}`));
    });
    if (typeof io !== "function") {
      showAuthError("The Socket.IO client did not load: run npm ci in app/web and reload.");
    }
    render();
  });
})();
