// The demo inbox page in Debian's headless Chromium, against a real gunicorn server.
// Run by tests/e2e/test_browser_inbox.py, which starts the server and passes, in the environment:
// BASE_URL, USER_ID, USER_TOKEN, OTHER_USER, WEBHOOK_API_KEY, OUTPUT_DIR (CHROMIUM optional).
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} must be set (tests/e2e/test_browser_inbox.py sets it)`);
  return value;
};
const BASE_URL = env("BASE_URL");
const USER_ID = env("USER_ID");
const USER_TOKEN = env("USER_TOKEN");
const OTHER_USER = env("OTHER_USER");
const API_KEY = env("WEBHOOK_API_KEY");
const OUTPUT_DIR = env("OUTPUT_DIR");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const TIMEOUT = 10_000;
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

let browser;
let context;
const problems = []; // CSP violations and uncaught page errors, from every tab

function watch(page, name) {
  page.on("console", (message) => {
    if (/Content.Security.Policy/i.test(message.text())) {
      problems.push(`${name} console ${message.type()}: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => problems.push(`${name} pageerror: ${error.message}`));
  return page;
}

async function openInbox(name) {
  const page = watch(await context.newPage(), name);
  page.setDefaultTimeout(TIMEOUT);
  const response = await page.goto(`${BASE_URL}/demo/`);
  assert.equal(response.status(), 200);
  assert.equal(await page.locator("#client-missing").count(), 0, "socket.io client not served");
  return page;
}

async function connectWith(page, token) {
  await page.fill("#token", token);
  await page.click("#connect");
  await page.waitForSelector('#status[data-state="connected"]');
}

const badge = (page) => page.textContent("#badge");

async function waitForBadge(page, count) {
  await page.waitForSelector(`#badge[data-count="${count}"]`).catch(async (error) => {
    throw new Error(`badge is ${await badge(page)}, expected ${count}: ${error.message}`);
  });
}

async function webhook(message) {
  const response = await fetch(`${BASE_URL}/webhook/notify`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-API-Key": API_KEY },
    body: JSON.stringify({ recipientId: USER_ID, message, type: "browser-e2e" }),
  });
  const body = await response.json();
  assert.equal(response.status, 201, JSON.stringify(body));
  return body.notification;
}

const itemOf = (page, id) => page.locator(`#notifications li[data-id="${id}"]`);

before(async () => {
  await mkdir(OUTPUT_DIR, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
});

after(async () => {
  await context?.close();
  await browser?.close();
});

test("two tabs of one user: live webhook, unread badge, read in one tab clears the other", async () => {
  // Tab 1 gets its token from the development endpoint, tab 2 is handed one.
  const tab1 = await openInbox("tab1");
  await tab1.fill("#dev-user", USER_ID);
  await tab1.click("#dev-token");
  await tab1.waitForFunction(() => document.getElementById("token").value.split(".").length === 3);
  await tab1.click("#connect");
  await tab1.waitForSelector('#status[data-state="connected"]');
  const tab2 = await openInbox("tab2");
  await connectWith(tab2, USER_TOKEN);
  assert.equal(await badge(tab1), "0");
  assert.equal(await badge(tab2), "0");

  const first = await webhook("first from the browser test");
  for (const tab of [tab1, tab2]) {
    await itemOf(tab, first.id).waitFor();
    await waitForBadge(tab, 1);
    assert.equal(await itemOf(tab, first.id).locator(".message").textContent(), first.message);
  }
  const second = await webhook("second from the browser test");
  for (const tab of [tab1, tab2]) {
    await itemOf(tab, second.id).waitFor();
    await waitForBadge(tab, 2);
  }
  const unreadShot = path.join(OUTPUT_DIR, "browser-inbox-unread.png");
  await tab1.screenshot({ path: unreadShot, fullPage: true });
  console.log(`screenshot: ${unreadShot}`);

  // One read in tab 1 reaches tab 2 through notification_read, then all of them.
  await itemOf(tab1, first.id).locator("button.mark-read").click();
  await waitForBadge(tab1, 1);
  await waitForBadge(tab2, 1);
  await tab2.waitForSelector(`#notifications li[data-id="${first.id}"][data-status="read"]`);
  await tab1.click("#mark-all");
  await waitForBadge(tab1, 0);
  await waitForBadge(tab2, 0);
  await tab2.waitForSelector(`#notifications li[data-id="${second.id}"][data-status="read"]`);

  // The send form: tab 2 sends to another user and sees the ack.
  await tab2.fill("#send-recipient", OTHER_USER);
  await tab2.fill("#send-message", "hello from the browser");
  await tab2.click("#send");
  await tab2.waitForSelector('#send-result[data-outcome="sent"]');
  assert.match(await tab2.textContent("#send-result"), new RegExp(`to ${OTHER_USER}`));

  // A new tab loads the history from GET /api/notifications: both there, both read.
  const tab3 = await openInbox("tab3");
  await connectWith(tab3, USER_TOKEN);
  await tab3.waitForSelector(`#notifications li[data-id="${first.id}"][data-status="read"]`);
  await tab3.waitForSelector(`#notifications li[data-id="${second.id}"][data-status="read"]`);
  assert.equal(await badge(tab3), "0");
  const readShot = path.join(OUTPUT_DIR, "browser-inbox-read.png");
  await tab1.screenshot({ path: readShot, fullPage: true });
  console.log(`screenshot: ${readShot}`);

  assert.deepEqual(problems, [], "CSP violations or page errors");
});

test("a refused token is reported on the page", async () => {
  const tab = await openInbox("refused");
  await tab.fill("#token", "not-a-jwt");
  await tab.click("#connect");
  await tab.waitForSelector('#status[data-state="error"]');
  assert.match(await tab.textContent("#auth-error"), /unauthorized \(token_invalid\)/);
  assert.deepEqual(problems, [], "CSP violations or page errors");
});

test("a short token is refreshed before it expires; a revocation signs the page out", async () => {
  const user = `${USER_ID}-live`;
  const tab = await openInbox("live");
  await tab.fill("#dev-user", user);
  await tab.fill("#dev-expires", "3");
  await tab.click("#dev-token");
  await tab.waitForFunction(() => document.getElementById("token").value.split(".").length === 3);
  const first = await tab.inputValue("#token");
  const exp = JSON.parse(Buffer.from(first.split(".")[1], "base64url")).exp;
  await tab.click("#connect");
  await tab.waitForSelector('#status[data-state="connected"]');
  // Past the first token's exp + JWT_LEEWAY (1 s) the page is still connected, refreshed twice.
  await tab.waitForFunction(() => Number(document.getElementById("session").dataset.refreshes) >= 2);
  await tab.waitForFunction((end) => Date.now() / 1000 > end, exp + 1.5);
  assert.equal(await tab.getAttribute("#status", "data-state"), "connected");
  assert.notEqual(await tab.inputValue("#token"), first, "the page holds the refreshed token");
  assert.match(await tab.textContent("#session"), /token refreshed, expires \d{4}-/);

  const response = await fetch(`${BASE_URL}/webhook/revoke`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-API-Key": API_KEY },
    body: JSON.stringify({ userId: user }),
  });
  assert.deepEqual(await response.json(), { success: true, disconnected: 1 });
  await tab.waitForSelector('#status[data-state="signed-out"]');
  assert.equal(await tab.textContent("#status"), "signed out (token_revoked)");
  assert.match(await tab.textContent("#session"), /revoked/);
  const shot = path.join(OUTPUT_DIR, "browser-inbox-signed-out.png");
  await tab.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${shot}`);
  assert.deepEqual(problems, [], "CSP violations or page errors");
});
