// The demo inbox page: connect with a token, list notifications live, mark them read, send one.
// A static file because the CSP allows no inline script; text goes in with textContent only.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const RANK = { pending: 0, delivered: 1, read: 2 };
  const HISTORY_LIMIT = 50;

  const items = new Map(); // id -> notification, the newest status seen wins
  let socket = null;
  let token = "";
  let lastId = 0;

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
    lastId = Math.max(lastId, notification.id);
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
      setStatus("connected");
      $("disconnect").disabled = false;
      $("send").disabled = false;
      loadHistory().catch((error) => showAuthError(`history: ${error.message}`));
      render();
    });
    socket.on("disconnect", (reason) => {
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
      render();
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
    setStatus("disconnected");
    $("disconnect").disabled = true;
    $("send").disabled = true;
    render();
  }

  async function devToken(event) {
    event.preventDefault();
    const response = await fetch("/demo/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ userId: $("dev-user").value.trim() }),
    });
    const body = await response.json();
    if (!response.ok || !body.success) {
      showAuthError(`token: ${body.error} ${JSON.stringify(body.details || {})}`);
      return;
    }
    showAuthError("");
    $("token").value = body.token;
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
