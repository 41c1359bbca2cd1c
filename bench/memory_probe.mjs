// Memory per idle socket: two rounds of N websocket clients, RSS of the worker before and 3 s after
// each round (bench/memory_probe.sh starts the server). node memory_probe.mjs <pid> <n> <parallel> <url> <secret>
import crypto from "node:crypto";
import fs from "node:fs";
import { io } from "socket.io-client";
const [pid, n, parallel, url, SECRET] = [process.argv[2], Number(process.argv[3] || 1000), Number(process.argv[4] || 50), process.argv[5], process.argv[6]];
const b64url = (v) => Buffer.from(v).toString("base64url");
function sign(sub) { const h = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" })); const iat = Math.floor(Date.now()/1000);
  const p = b64url(JSON.stringify({ sub, iat, exp: iat + 3600 })); return `${h}.${p}.${crypto.createHmac("sha256", SECRET).update(`${h}.${p}`).digest("base64url")}`; }
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const one = (i) => new Promise((resolve) => { const s = io(url, { transports: ["websocket"], forceNew: true, reconnection: false, timeout: 20000, auth: { token: sign("p" + i) } });
  s.once("connect", () => resolve(s)); s.once("connect_error", () => { s.close(); resolve(null); }); });
for (let round = 0; round < 2; round++) {
  await sleep(3000);
  const before = rss(); const socks = []; let next = 0; const t0 = Date.now();
  await Promise.all(Array.from({ length: parallel }, async () => { while (next < n) { const s = await one(round * n + next++); if (s) socks.push(s); } }));
  const secs = (Date.now() - t0) / 1000;
  await sleep(3000);
  const after = rss();
  console.log(JSON.stringify({ round, connected: socks.length, perSec: Math.round(socks.length / secs), before, after, kbPerSocket: +((after - before) / socks.length).toFixed(1) }));
  socks.forEach((s) => s.close());
}
process.exit(0);
