// The seed README's client snippet (seed-readme-snippet.mjs, copied verbatim) run as a user
// would run it: only the URL and "your-jwt-token" are replaced, by NOTIFY_URL and a real token.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { URL, WAIT_MS, connect, sign, sleep, uid } from "./helpers.mjs";

const HERE = new globalThis.URL(".", import.meta.url);
const SNIPPET_URL = "http://localhost:3000";
const SNIPPET_RECIPIENT = "user-123";
const SNIPPET_MESSAGE = "Hello, this is a test notification!";

test("the README client snippet connects, sends, and its ack says success", async () => {
  const original = await readFile(new globalThis.URL("seed-readme-snippet.mjs", HERE), "utf8");
  assert.ok(original.includes(`"${SNIPPET_URL}"`) && original.includes('"your-jwt-token"'));
  const sender = uid("snippet");
  const script = original
    .replace(`"${SNIPPET_URL}"`, JSON.stringify(URL()))
    .replace('"your-jwt-token"', JSON.stringify(sign(sender)));
  // Under this package's node_modules (git-ignored), so that "socket.io-client" resolves.
  const folder = fileURLToPath(new globalThis.URL("node_modules/.cache/seed-snippet/", HERE));
  await mkdir(folder, { recursive: true });
  const path = join(folder, `${sender}.mjs`);
  await writeFile(path, script);
  // The snippet's recipient, listening: the notification must really arrive.
  const recipient = await connect(SNIPPET_RECIPIENT);
  const child = spawn(process.execPath, [path], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  child.stderr.on("data", (chunk) => (stderr += chunk));
  try {
    const end = Date.now() + 2 * WAIT_MS;
    while (!/Notification sent successfully|Failed to send/.test(stdout) && Date.now() < end) {
      if (child.exitCode !== null) break;
      await sleep(50);
    }
    assert.match(stdout, /Notification sent successfully/, `stdout: ${stdout}\nstderr: ${stderr}`);
    assert.equal(stderr, "");
    const mine = () => recipient.received.find((n) => n.senderId === sender);
    const until = Date.now() + WAIT_MS;
    while (!mine() && Date.now() < until) await sleep(20);
    const pushed = mine();
    assert.ok(pushed, `the snippet's notification did not reach ${SNIPPET_RECIPIENT}`);
    assert.equal(pushed.recipientId, SNIPPET_RECIPIENT);
    assert.equal(pushed.message, SNIPPET_MESSAGE);
  } finally {
    // The snippet never disconnects (it keeps listening), as in the README: stop it.
    child.kill("SIGTERM");
    await rm(path, { force: true });
  }
});
