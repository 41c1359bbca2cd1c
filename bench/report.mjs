// Writes bench/RESULTS.md (on stdout) from the JSON that run.sh collected in $BENCH_OUT.
import fs from "node:fs";
import path from "node:path";
import { scaleSection } from "./scale_report.mjs";

const dir = process.env.BENCH_OUT;
const load = (label, scenario) => {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, `${label}-${scenario}.json`), "utf8").trim().split("\n").pop());
  } catch {
    return null;
  }
};
const ours = (s) => load("ours", s);
const peer = (s) => load("peer", s);
const fmt = (x) => (x === null || x === undefined ? "–" : typeof x === "number" ? String(x) : x);
const ratio = (a, b, higherIsBetter) => {
  if (typeof a !== "number" || typeof b !== "number" || a === 0 || b === 0) return "n/a";
  return `${(higherIsBetter ? a / b : b / a).toFixed(2)}×`;
};

const rows = [];
const row = (what, a, b, higher, unit = "") => rows.push(`| ${what} | ${fmt(a)}${unit} | ${fmt(b)}${unit} | ${ratio(a, b, higher)} |`);
const lost = [];

const oc = ours("connect");
const pc = peer("connect");
for (const level of oc?.levels || []) {
  const p = (pc?.levels || []).find((l) => l.clients === level.clients) || {};
  row(`connect ${level.clients}: connected (failed)`, `${level.connected} (${level.failed})`, p.clients ? `${p.connected} (${p.failed})` : null);
  row(`connect ${level.clients}: handshakes/s`, level.connectsPerSec, p.connectsPerSec, true);
  row(`connect ${level.clients}: server RSS before → after, MB`, `${level.rssBeforeMB} → ${level.rssAfterMB}`, p.clients ? `${p.rssBeforeMB} → ${p.rssAfterMB}` : null);
  row(`connect ${level.clients}: KB per socket (RSS after − RSS before this level)`, level.kbPerSocket, p.kbPerSocket, false);
  const fromStart = (x, base) => (x && base ? Math.round(((x.rssAfterMB - base.rssBeforeMB) * 10240) / x.connected) / 10 : null);
  row(`connect ${level.clients}: KB per socket (RSS after − RSS at start)`, fromStart(level, oc.levels[0]), fromStart(p.clients ? p : null, pc?.levels?.[0]), false);
}
const ol = ours("latency");
const pl = peer("latency");
for (const r of ol?.rates || []) {
  const p = (pl?.rates || []).find((x) => x.rate === r.rate) || {};
  for (const q of ["p50", "p95", "p99", "max"]) row(`latency @${r.rate}/s, 1,000 clients: ${q} ms`, r[q], p[q], false);
  lost.push(["latency", `@${r.rate}/s`, `${r.lost} of ${r.accepted}`, p.rate ? `${p.lost} of ${p.accepted}` : "–"]);
}
const levelsOf = (x) => x?.levels || [];
for (const [name, o, p] of [
  ["throughput (webhook → delivered), 1,000 clients", ours("throughput"), peer("throughput")],
  ["two processes behind Redis (webhook → delivered)", ours("two"), peer("two")],
]) {
  for (const l of levelsOf(o)) {
    const q = levelsOf(p).find((x) => x.inFlight === l.inFlight) || {};
    row(`${name}, ${l.inFlight} in flight: delivered/s`, l.deliveredPerSec, q.deliveredPerSec, true);
    row(`${name}, ${l.inFlight} in flight: webhook p99 ms`, l.p99, q.p99, false);
    lost.push([name, `${l.inFlight} in flight`, `${l.lost} of ${l.accepted}`, q.inFlight ? `${q.lost} of ${q.accepted}` : "–"]);
  }
}
for (const [name, o, p] of [
  ["throughput, 64 in flight", ours("throughput"), peer("throughput")],
]) {
  const l = levelsOf(o).find((x) => x.inFlight === 64) || {};
  const q = levelsOf(p).find((x) => x.inFlight === 64) || {};
  row(`${name}: server CPU ms per notification`, l.serverCpuMsPerNotification, q.serverCpuMsPerNotification, false);
}
const os = ours("socket");
const ps = peer("socket");
for (const l of levelsOf(os)) {
  const q = levelsOf(ps).find((x) => x.inFlight === l.inFlight) || {};
  row(`socket send_notification, ${l.inFlight} in flight: acked/s`, l.acceptedPerSec, q.acceptedPerSec, true);
  row(`socket send_notification, ${l.inFlight} in flight: delivered/s`, l.deliveredPerSec, q.deliveredPerSec, true);
  row(`socket send_notification, ${l.inFlight} in flight: server CPU ms per notification`, l.serverCpuMsPerNotification, q.serverCpuMsPerNotification, false);
  lost.push(["socket send_notification", `${l.inFlight} in flight`, `${l.lost} of ${l.accepted}`, q.inFlight ? `${q.lost} of ${q.accepted}` : "–"]);
}
const of = ours("fanout");
const pf = peer("fanout");
if (of) {
  row("fan-out: 1 user × 500 sockets, socket deliveries/s", of.socketDeliveriesPerSec, pf?.socketDeliveriesPerSec, true);
  lost.push(["fan-out", `${of.sends} sends × ${of.sockets} sockets`, `${of.lost} of ${of.expectedReceipts}`, pf ? `${pf.lost} of ${pf.expectedReceipts}` : "–"]);
}
const ob = ours("batch");
const pb = peer("batch");
if (ob) {
  row("batch webhook, 1,000 recipients: recipients/s stored and delivered", ob.recipientsPerSec, pb?.supported === false ? "n/a (no batch)" : pb?.recipientsPerSec, true);
  lost.push(["batch webhook", `${ob.rounds} × ${ob.recipients}`, `${ob.lost} of ${ob.rounds * ob.recipients}`, "n/a"]);
}

const floor = load("floor", "floor");

// ---- the issue's targets ---------------------------------------------------------------------
const targets = [];
const verdict = (ok, miss) => (ok === null ? "not measured" : ok ? "met" : `missed: ${miss}`);
const best = (x) => x?.best?.deliveredPerSec ?? null;
{
  const o = best(ours("throughput"));
  const p = best(peer("throughput"));
  const ok = o === null || p === null ? null : o >= p && o >= 2000;
  targets.push(["delivered throughput ≥ 1.0× the peer's and ≥ 2,000/s (best of 16/64 in flight)",
    `${fmt(o)}/s vs peer ${fmt(p)}/s`, verdict(ok, `${ratio(o, p, true)} of the peer, ${o !== null ? Math.round((100 * o) / 2000) : "–"} % of 2,000/s`)]);
}
{
  const o = (ol?.rates || []).find((x) => x.rate === 500);
  const p = (pl?.rates || []).find((x) => x.rate === 500);
  const ok = !o || !p ? null : o.p99 <= p.p99 && o.p99 <= 25;
  targets.push(["webhook → client p99 @500/s, 1,000 clients ≤ the peer's and ≤ 25 ms",
    `${fmt(o?.p99)} ms vs peer ${fmt(p?.p99)} ms`, verdict(ok, `${fmt(o?.p99)} ms`)]);
}
{
  const o = (oc?.levels || []).find((l) => l.clients === 10000);
  const p = (pc?.levels || []).find((l) => l.clients === 10000);
  const per = (x, base) => (x && base ? Math.round(((x.rssAfterMB - base.rssBeforeMB) * 10240) / x.connected) / 10 : null);
  const ko = per(o, oc?.levels?.[0]);
  const kp = per(p, pc?.levels?.[0]);
  const ok = !o || !p ? null : o.connected === 10000 && o.failed === 0 && ko <= 2 * kp;
  targets.push(["10,000 sockets on one worker, memory per socket ≤ 2× the peer's (RSS growth from start)",
    `${fmt(o?.connected)} held, ${fmt(ko)} KB vs peer ${fmt(kp)} KB`, verdict(ok, `${ko && kp ? (ko / kp).toFixed(1) : "–"}× the peer's`)]);
}
{
  const r = ob?.recipientsPerSec ?? null;
  targets.push(["batch webhook ≥ 20,000 recipients/s stored and delivered", `${fmt(r)}/s`,
    verdict(r === null ? null : r >= 20000, `${r !== null ? Math.round((100 * r) / 20000) : "–"} % of it`)]);
}
{
  const lostOf = (cell) => Number(String(cell).split(" ")[0]) || 0;
  const oursLost = lost.reduce((n, r) => n + lostOf(r[2]), 0);
  targets.push(["nothing lost in any scenario", `${oursLost} lost`, verdict(oursLost === 0, `${oursLost} lost`)]);
}

const cmd = (label) => {
  const lines = fs.existsSync(path.join(dir, "commands.txt")) ? fs.readFileSync(path.join(dir, "commands.txt"), "utf8") : "";
  return lines;
};

console.log(`# Benchmark results

Generated by \`bench/run.sh\` (\`make bench\`); do not edit by hand.

- Date: ${process.env.BENCH_STARTED}
- Machine: ${process.env.BENCH_MACHINE}
- Versions: ${process.env.BENCH_VERSIONS}
- Both servers were measured in the same run, one after the other (ours first, then the peer),
  against the same MariaDB and Redis, with the same secrets and the rate limits raised alike.
- The load generator is one Node process (\`bench/loadgen.mjs\`, official \`socket.io-client\`,
  websocket transport) on the same 2 cores as the server under test, MariaDB and Redis; other
  work on the machine (e.g. a test suite) is noise in these figures.
- ours: \`gunicorn -c gunicorn.conf.py wsgi:app\` (one gevent-websocket worker), APP_ENV=production,
  LOG_LEVEL=WARNING, database \`notify_bench\` (\`flask db upgrade\`), REDIS_URL set (message queue).
  peer: \`node server.js\` (NODE_ENV=production, REDIS_URL set: Redis adapter), database
  \`notify_bench_peer\` (its schema.sql).
- "delivered/s" counts \`new_notification\` receipts at the clients within the 10 s window;
  latencies are measured from the moment the webhook request is sent to the receipt.

## Ours vs peer

The ratio is ours relative to the peer, > 1× meaning ours is better (faster, or less memory /
lower latency).

| measurement | ours | peer | ratio |
|---|---|---|---|
${rows.join("\n")}

## Targets (issue 6)

| target | measured | verdict |
|---|---|---|
${targets.map((r) => `| ${r.join(" | ")} |`).join("\n")}

## The floor

${floor ? `A Flask app that only parses the webhook's JSON and answers 201 (\`bench/floor_app.py\`), under the
same gunicorn worker, 64 requests in flight: **${floor.requestsPerSec} requests/s at
${floor.serverCpuMsPerRequest} ms of server CPU per request** (${Math.round(100 * floor.serverCpuShare)} % of a core). No Flask route
stores, limits and delivers a notification in less CPU than that on this machine.` : "Not measured in this run."}

## Nothing lost

Accepted notifications (201 / ack success) that never reached their recipient's socket(s) after
the drain wait.

| scenario | load | ours lost | peer lost |
|---|---|---|---|
${lost.map((r) => `| ${r.join(" | ")} |`).join("\n")}

${scaleSection(dir) ?? ""}
## Commands

\`\`\`
${cmd()}\`\`\`

Raw JSON per scenario: \`${dir}/<ours|peer>-<scenario>.json\`.
`);
