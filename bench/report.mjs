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
  const sent = ob.rounds + (ob.warmupRounds || 0); // the warm-up rounds count for losses too
  lost.push(["batch webhook", `${sent} × ${ob.recipients}`, `${ob.lost} of ${sent * ob.recipients}`, "n/a"]);
}

const floor = load("floor", "floor");

// ---- the issue's targets (issue 11) -----------------------------------------------------------
const targets = [];
const verdict = (ok, miss) => (ok === null ? "not measured" : ok ? "met" : `missed: ${miss}`);
const times = (a, b) => (typeof a === "number" && typeof b === "number" && b ? a / b : null);
const x2 = (r) => (r === null ? "–" : `${r.toFixed(2)}×`);
const cpuAt64 = (x) => levelsOf(x).find((l) => l.inFlight === 64)?.serverCpuMsPerNotification ?? null;
{
  const o = cpuAt64(ours("throughput"));
  const p = cpuAt64(peer("throughput"));
  const r = times(o, p);
  targets.push(["1. server CPU per webhook notification (64 in flight) ≤ 1.35× the peer's",
    `${fmt(o)} ms vs peer ${fmt(p)} ms (${x2(r)})`, verdict(r === null ? null : r <= 1.35, x2(r))]);
}
{
  const o = cpuAt64(ours("socket"));
  const p = cpuAt64(peer("socket"));
  const r = times(o, p);
  targets.push(["2. server CPU per socket send_notification ≤ 1.75× the peer's",
    `${fmt(o)} ms vs peer ${fmt(p)} ms (${x2(r)})`, verdict(r === null ? null : r <= 1.75, x2(r))]);
}
{
  const at = (x, rate) => (x?.rates || []).find((y) => y.rate === rate);
  const o5 = at(ol, 500);
  const p5 = at(pl, 500);
  const o10 = at(ol, 1000);
  const ok5 = !o5 || !p5 ? null : o5.p99 <= 25 && o5.p99 <= 2 * p5.p99;
  targets.push(["3a. webhook → client p99 @500/s, 1,000 clients ≤ 25 ms and ≤ 2× the peer's",
    `${fmt(o5?.p99)} ms vs peer ${fmt(p5?.p99)} ms`, verdict(ok5, `${fmt(o5?.p99)} ms`)]);
  targets.push(["3b. p99 @1,000/s ≤ 50 ms", `${fmt(o10?.p99)} ms (peer ${fmt(at(pl, 1000)?.p99)} ms)`,
    verdict(o10 ? o10.p99 <= 50 : null, `${fmt(o10?.p99)} ms`)]);
  targets.push(["3c. max @500/s ≤ 60 ms", `${fmt(o5?.max)} ms (peer ${fmt(p5?.max)} ms)`,
    verdict(o5 ? o5.max <= 60 : null, `${fmt(o5?.max)} ms`)]);
}
const per = (x, base) => (x && base ? Math.round(((x.rssAfterMB - base.rssBeforeMB) * 10240) / x.connected) / 10 : null);
{
  const o = (oc?.levels || []).find((l) => l.clients === 10000);
  const ko = per(o, oc?.levels?.[0]);
  const ok = !o ? null : o.connected === 10000 && o.failed === 0 && ko <= 30;
  targets.push(["4. memory per idle socket at 10,000 (RSS growth from start) ≤ 30 KB",
    `${fmt(o?.connected)} held, ${fmt(ko)} KB (peer ${fmt(per((pc?.levels || []).find((l) => l.clients === 10000), pc?.levels?.[0]))} KB)`,
    verdict(ok, `${fmt(ko)} KB`)]);
}
{
  const o = (oc?.levels || []).find((l) => l.clients === 10000);
  const p = (pc?.levels || []).find((l) => l.clients === 10000);
  const r = times(o?.connectsPerSec, p?.connectsPerSec);
  targets.push(["5. handshakes/s at 10,000 ≥ 0.8× the peer's", `${fmt(o?.connectsPerSec)} vs peer ${fmt(p?.connectsPerSec)} (${x2(r)})`,
    verdict(r === null ? null : r >= 0.8, x2(r))]);
}
{
  const r = ob?.recipientsPerSec ?? null;
  targets.push(["6. batch webhook of 1,000 recipients ≥ 15,000 recipients/s stored and delivered", `${fmt(r)}/s`,
    verdict(r === null ? null : r >= 15000, `${r !== null ? Math.round((100 * r) / 15000) : "–"} % of it`)]);
}
{
  const lostOf = (cell) => Number(String(cell).split(" ")[0]) || 0;
  const oursLost = lost.reduce((n, r) => n + lostOf(r[2]), 0);
  targets.push(["7. nothing lost in any scenario", `${oursLost} lost`, verdict(oursLost === 0, `${oursLost} lost`)]);
}

// ---- floors: what the stack costs before the service does anything ------------------------------
const floorRows = [];
if (floor) floorRows.push(["bare Flask route (parse JSON, answer 201), 64 requests in flight", `${floor.requestsPerSec}/s`, floor.serverCpuMsPerRequest]);
for (const [label, what] of [["floor-sio", "bare python-socketio: acked event + one emit, 64 in flight"], ["floor-fsio", "bare Flask-SocketIO: acked event + one emit, 64 in flight"]]) {
  const l = levelsOf(load(label, "socket")).find((y) => y.inFlight === 64);
  if (l) floorRows.push([what, `${l.acceptedPerSec}/s`, l.serverCpuMsPerNotification]);
}
const oursOf = [
  ["our webhook, 64 in flight", cpuAt64(ours("throughput")), cpuAt64(peer("throughput"))],
  ["our socket send_notification, 64 in flight", cpuAt64(ours("socket")), cpuAt64(peer("socket"))],
];
// Ours over the floors: both are CPython under the same worker, so this moves less with the
// machine than ours over the peer (a Node process) does; compare runs on it.
const over = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : "n/a");
const floorSio = levelsOf(load("floor-sio", "socket")).find((y) => y.inFlight === 64)?.serverCpuMsPerNotification;
const floorLine = floor
  ? `Ours over the floors (both CPython under the same worker, so this moves less with the machine than ours over the peer): webhook ${over(oursOf[0][1], floor.serverCpuMsPerRequest)} the bare Flask route, socket send ${over(oursOf[1][1], floorSio)} bare python-socketio.`
  : "";

// ---- garbage collection in our worker, from its log (GC_PAUSE_LOG_MS=5 in run.sh) ----------------
let gcLine = "Not measured in this run.";
try {
  const logText = fs.readFileSync(path.join(dir, `ours-${process.env.BENCH_OURS_PORT || 3300}.log`), "utf8");
  const pauses = logText.split("\n").filter((l) => l.includes('"gc_pause"')).map((l) => JSON.parse(l));
  const byGen = [0, 1, 2].map((g) => pauses.filter((p) => p.generation === g).map((p) => p.duration_ms));
  const describe = (xs) => (xs.length ? `${xs.length}, longest ${Math.max(...xs).toFixed(1)} ms` : "none");
  gcLine = `Collections that paused our worker ≥ 5 ms over the whole run (all scenarios): generation 2: ${describe(byGen[2])}; generation 1: ${describe(byGen[1])}; generation 0: ${describe(byGen[0])}. \`bench/gc_align.py\` aligns them with the latency outliers.`;
} catch {
  // no log of ours in this run
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

## Targets (issue 11)

| target | measured | verdict |
|---|---|---|
${targets.map((r) => `| ${r.join(" | ")} |`).join("\n")}

## Floors

What the stack costs per operation before the service does anything: bare apps under the same
gunicorn worker (\`bench/floor_app.py\`, \`floor_socketio.py\`, \`floor_flask_socketio.py\`), measured in
this run. Server CPU per request or acked event.

| floor | rate | server CPU ms |
|---|---|---|
${floorRows.map((r) => `| ${r.join(" | ")} |`).join("\n") || "| not measured | | |"}
${oursOf.map((r) => `| ${r[0]} (peer: ${fmt(r[2])} ms) | | ${fmt(r[1])} |`).join("\n")}

${floorLine}

## Garbage collection

${gcLine}

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
