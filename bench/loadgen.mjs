// Load generator for any server that implements the contract subset that notify-server and
// the Node peer share: JWT (HS256) in `auth.token`, `new_notification`, `send_notification` with
// ack, `POST /webhook/notify` with `X-API-Key`. One Node process (it shares the machine's cores
// with the server under test). Every scenario is bounded in time and count.
//
//   node loadgen.mjs <scenario> --url http://127.0.0.1:3300 --secret S --key K [--pids 1,2]
//        [--url2 http://127.0.0.1:3301] [--label ours]
//
// scenarios: connect, latency, throughput, socket, fanout, batch, two, floor,
//            scale (--urls u1,...,uN with --pids in the same order)
// Prints one JSON object (the measurements) on stdout; progress goes to stderr.

import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import { monitorEventLoopDelay, PerformanceObserver, performance } from "node:perf_hooks";
import { io } from "socket.io-client";

// ---- arguments -------------------------------------------------------------------------------
const [scenario, ...rest] = process.argv.slice(2);
const opt = {};
for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, "")] = rest[i + 1];
const URL1 = opt.url;
const URL2 = opt.url2;
const SECRET = opt.secret;
const API_KEY = opt.key;
const PIDS = (opt.pids || "").split(",").filter(Boolean).map(Number);
const RUN = opt.run || crypto.randomBytes(3).toString("hex"); // user ids are unique per run
const log = (...args) => console.error(`[${opt.label || "bench"} ${scenario}]`, ...args);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.now();

// ---- JWT HS256 with node:crypto --------------------------------------------------------------
const b64url = (value) => Buffer.from(value).toString("base64url");
function sign(sub) {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const iat = Math.floor(Date.now() / 1000);
  const payload = b64url(JSON.stringify({ sub, iat, exp: iat + 3600 }));
  const mac = crypto.createHmac("sha256", SECRET).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${mac}`;
}

// ---- server memory ---------------------------------------------------------------------------
function rssKb(pids = PIDS) {
  let total = 0;
  for (const pid of pids) {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    total += Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
  }
  return total;
}

/** CPU seconds (user + system) the server processes used so far: robust to a busy machine. */
function cpuSeconds(pids = PIDS) {
  let ticks = 0;
  for (const pid of pids) {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15 of stat)
  }
  return ticks / 100; // USER_HZ
}

// ---- receipts --------------------------------------------------------------------------------
// Every message the generator sends is "bench:<seq>"; sentAt[seq] is when its request left.
const sentAt = new Map();
const acked = new Set(); // seqs the server accepted (201 / ack success)
const receipts = new Map(); // seq -> number of sockets that received it
const latencies = []; // ms, first receipt of each seq
const sentEpoch = new Map(); // seq -> Date.now() when sent (to align outliers with server logs)
const outliers = []; // [sent epoch ms, latency ms] of first receipts over OUTLIER_MS
const OUTLIER_MS = 30;
// The load generator's own stalls delay the receipts it times: its garbage-collection pauses of
// 5 ms or more ([start epoch ms, ms, kind]) and its event loop's delay, per latency level.
const ownGcPauses = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.duration >= 5 && ownGcPauses.length < 2000) {
      const kind = { 1: "minor", 2: "major", 4: "incremental", 8: "weakcb" }[entry.detail?.kind];
      const at = round(performance.timeOrigin + entry.startTime, 0);
      ownGcPauses.push([at, round(entry.duration, 1), kind || "other"]);
    }
  }
}).observe({ entryTypes: ["gc"] });
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();
let received = 0;
let receiveWindowEnd = Infinity;
let receivedInWindow = 0;

function onNotification(n) {
  const text = n && typeof n.message === "string" ? n.message : "";
  if (!text.startsWith("bench:")) return;
  const seq = Number(text.slice(6));
  const t = now();
  received += 1;
  if (t <= receiveWindowEnd) receivedInWindow += 1;
  const count = receipts.get(seq) || 0;
  receipts.set(seq, count + 1);
  if (count === 0 && sentAt.has(seq)) {
    const latency = t - sentAt.get(seq);
    latencies.push(latency);
    if (latency > OUTLIER_MS && outliers.length < 2000) outliers.push([sentEpoch.get(seq), round(latency, 1)]);
  }
}

let nextSeq = 1;

// ---- clients ---------------------------------------------------------------------------------
function connectOne(url, user, timeoutMs) {
  return new Promise((resolve) => {
    const socket = io(url, {
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      timeout: timeoutMs,
      auth: { token: sign(user) },
    });
    const done = (ok, why) => {
      socket.off("connect");
      socket.off("connect_error");
      if (!ok) socket.close();
      resolve({ ok, socket, why });
    };
    socket.on("new_notification", onNotification);
    socket.once("connect", () => done(true));
    socket.once("connect_error", (err) => done(false, err?.message || "error"));
  });
}

/** Connect users[i] to urlOf(i), at most `parallel` handshakes at once, within `deadlineMs`. */
async function connectMany(users, { urlOf = () => URL1, parallel = 200, deadlineMs = 60_000 } = {}) {
  const sockets = [];
  const connectedUsers = [];
  const failures = {};
  let failed = 0;
  let index = 0;
  const start = now();
  const worker = async () => {
    while (index < users.length && now() - start < deadlineMs) {
      const i = index++;
      const result = await connectOne(urlOf(i), users[i], 20_000);
      if (result.ok) {
        sockets.push(result.socket);
        connectedUsers.push(users[i]);
      }
      else {
        failed += 1;
        failures[result.why] = (failures[result.why] || 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  const seconds = (now() - start) / 1000;
  failed += users.length - sockets.length - failed; // not attempted before the deadline
  return { sockets, connectedUsers, failed, failures, seconds, rate: sockets.length / seconds };
}

async function closeAll(sockets) {
  for (const socket of sockets) socket.close();
  await sleep(1500);
}

const users = (prefix, n) => Array.from({ length: n }, (_, i) => `${RUN}-${prefix}-${i}`);

// ---- HTTP ------------------------------------------------------------------------------------
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

function post(url, body) {
  return new Promise((resolve) => {
    const data = JSON.stringify(body);
    const req = http.request(
      `${url}/webhook/notify`,
      {
        method: "POST",
        agent,
        headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data), "X-API-Key": API_KEY },
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error("timeout")));
    req.on("error", (err) => resolve({ status: 0, body: err.message }));
    req.end(data);
  });
}

const httpErrors = {};
async function webhook(url, recipientId) {
  const seq = nextSeq++;
  sentAt.set(seq, now());
  sentEpoch.set(seq, Date.now());
  const res = await post(url, { recipientId, message: `bench:${seq}` });
  if (res.status === 201) acked.add(seq);
  else httpErrors[res.status] = (httpErrors[res.status] || 0) + 1;
  return res.status;
}

// ---- statistics ------------------------------------------------------------------------------
function pct(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
const round = (x, d = 1) => (x === null || x === undefined ? null : Math.round(x * 10 ** d) / 10 ** d);

/** Wait until every acked seq reached `perSeq` sockets, or `maxMs` passed. */
async function drain(perSeq = 1, maxMs = 5000) {
  const end = now() + maxMs;
  const missing = () => [...acked].filter((s) => (receipts.get(s) || 0) < perSeq).length;
  while (now() < end && missing() > 0) await sleep(50);
  return missing();
}

function resetCounters() {
  sentAt.clear();
  acked.clear();
  receipts.clear();
  latencies.length = 0;
  outliers.length = 0;
  ownGcPauses.length = 0;
  loopDelay.reset();
  sentEpoch.clear();
  received = 0;
  receivedInWindow = 0;
  receiveWindowEnd = Infinity;
  for (const k of Object.keys(httpErrors)) delete httpErrors[k];
}

// ---- scenarios -------------------------------------------------------------------------------
async function scenarioConnect() {
  const levels = (opt.levels || "1000,5000,10000").split(",").map(Number);
  const out = [];
  for (const n of levels) {
    await sleep(1000);
    const before = rssKb();
    const cpuBefore = cpuSeconds();
    const loadgenBefore = process.cpuUsage();
    const r = await connectMany(users(`c${n}`, n), { parallel: Number(opt.parallel || 200) });
    const serverCpu = cpuSeconds() - cpuBefore;
    const loadgenCpu = process.cpuUsage(loadgenBefore);
    await sleep(2000); // let the server settle (log writers, GC)
    const after = rssKb();
    const row = {
      clients: n,
      connected: r.sockets.length,
      failed: r.failed,
      failures: r.failures,
      seconds: round(r.seconds, 2),
      connectsPerSec: round(r.rate, 0),
      // CPU per handshake over the burst: the server's, and this load generator's on the same cores
      serverCpuMsPerConnect: r.sockets.length ? round((1000 * serverCpu) / r.sockets.length, 3) : null,
      loadgenCpuMsPerConnect: r.sockets.length
        ? round((loadgenCpu.user + loadgenCpu.system) / 1000 / r.sockets.length, 3)
        : null,
      rssBeforeMB: round(before / 1024),
      rssAfterMB: round(after / 1024),
      kbPerSocket: r.sockets.length ? round((after - before) / r.sockets.length, 1) : null,
    };
    log(JSON.stringify(row));
    out.push(row);
    await closeAll(r.sockets);
  }
  return { levels: out };
}

async function withClients(n, fn, { split = false } = {}) {
  const ids = users("u", n);
  const c = await connectMany(ids, { urlOf: split ? (i) => (i % 2 ? URL2 : URL1) : () => URL1 });
  if (c.failed) log(`${c.failed} clients failed to connect`, c.failures);
  await sleep(1000);
  try {
    // Recipients are only users whose socket connected: an offline one's notification waits
    // as pending by design, which is not a loss and not what these scenarios measure.
    return await fn(c.connectedUsers, c);
  } finally {
    await closeAll(c.sockets);
  }
}

const pick = (ids) => ids[Math.floor(Math.random() * ids.length)];

async function scenarioLatency() {
  const rates = (opt.rates || "200,500,1000").split(",").map(Number);
  const seconds = Number(opt.seconds || 10);
  return withClients(1000, async (ids, c) => {
    const out = [];
    for (const rate of rates) {
      resetCounters();
      const total = rate * seconds;
      const start = now();
      const startEpoch = Date.now();
      const pending = [];
      let sent = 0;
      while (sent < total) {
        const due = Math.min(total, Math.floor(((now() - start) / 1000) * rate) + 1);
        while (sent < due) {
          pending.push(webhook(URL1, pick(ids)));
          sent += 1;
        }
        await sleep(2);
      }
      const sendSeconds = (now() - start) / 1000;
      await Promise.all(pending);
      const lost = await drain(1, 5000);
      const row = {
        rate,
        clients: c.sockets.length,
        sent,
        accepted: acked.size,
        httpErrors: { ...httpErrors },
        achievedRate: round(sent / sendSeconds, 0),
        p50: round(pct(latencies, 50), 2),
        p95: round(pct(latencies, 95), 2),
        p99: round(pct(latencies, 99), 2),
        max: round(Math.max(...latencies), 2),
        lost,
        startedEpochMs: startEpoch,
        endedEpochMs: Date.now(),
        outliers: [...outliers],
        loadgenGcPauses: [...ownGcPauses],
        loadgenLoopDelayMs: { p99: round(loopDelay.percentile(99) / 1e6, 1), max: round(loopDelay.max / 1e6, 1) },
      };
      log(JSON.stringify(row));
      out.push(row);
      await sleep(1000);
    }
    return { rates: out };
  });
}

async function closedLoop(seconds, inFlight, sendOne) {
  resetCounters();
  const cpuBefore = cpuSeconds();
  const start = now();
  receiveWindowEnd = start + seconds * 1000;
  let okCount = 0;
  const worker = async (w) => {
    while (now() < receiveWindowEnd) if (await sendOne(w)) okCount += 1;
  };
  await Promise.all(Array.from({ length: inFlight }, (_, w) => worker(w)));
  const elapsed = (now() - start) / 1000;
  const cpu = cpuSeconds() - cpuBefore;
  const lost = await drain(1, 10_000);
  return {
    inFlight,
    seconds: round(elapsed, 2),
    accepted: acked.size,
    acceptedPerSec: round(okCount / elapsed, 0),
    deliveredPerSec: round(receivedInWindow / seconds, 0),
    delivered: received,
    httpErrors: { ...httpErrors },
    p50: round(pct(latencies, 50), 2),
    p99: round(pct(latencies, 99), 2),
    // Server CPU per accepted notification, and the share of a core it used meanwhile.
    serverCpuMsPerNotification: acked.size ? round((1000 * cpu) / acked.size, 3) : null,
    serverCpuShare: round(cpu / elapsed, 2),
    lost,
  };
}

async function scenarioThroughput({ split = false } = {}) {
  const levels = (opt.inflight || "16,64").split(",").map(Number);
  const seconds = Number(opt.seconds || 10);
  return withClients(
    1000,
    async (ids) => {
      const out = [];
      for (const inFlight of levels) {
        const row = await closedLoop(seconds, inFlight, async (w) => {
          const url = split && w % 2 ? URL2 : URL1;
          return (await webhook(url, pick(ids))) === 201;
        });
        log(JSON.stringify(row));
        out.push(row);
        await sleep(1000);
      }
      const best = out.reduce((a, b) => (b.deliveredPerSec > a.deliveredPerSec ? b : a));
      return { levels: out, best };
    },
    { split },
  );
}

async function scenarioSocket() {
  const levels = (opt.inflight || "64").split(",").map(Number);
  const seconds = Number(opt.seconds || 10);
  return withClients(1000, async (ids, c) => {
    const out = [];
    const ackErrors = {};
    for (const inFlight of levels) {
      const row = await closedLoop(seconds, inFlight, async (w) => {
        const socket = c.sockets[(w * 7919 + nextSeq) % c.sockets.length];
        const seq = nextSeq++;
        sentAt.set(seq, now());
        try {
          const res = await socket.timeout(30_000).emitWithAck("send_notification", {
            recipientId: pick(ids),
            message: `bench:${seq}`,
          });
          if (res && res.success) {
            acked.add(seq);
            return true;
          }
          const code = res?.code || "unknown";
          ackErrors[code] = (ackErrors[code] || 0) + 1;
        } catch {
          ackErrors.timeout = (ackErrors.timeout || 0) + 1;
        }
        return false;
      });
      row.ackErrors = { ...ackErrors };
      log(JSON.stringify(row));
      out.push(row);
    }
    return { levels: out, best: out.reduce((a, b) => (b.acceptedPerSec > a.acceptedPerSec ? b : a)) };
  });
}

async function scenarioFanout() {
  const sockets = 500;
  const sends = Number(opt.sends || 100);
  const user = `${RUN}-fan`;
  const c = await connectMany(Array(sockets).fill(user), { parallel: 50 });
  await sleep(1000);
  resetCounters();
  const start = now();
  let index = 0;
  const worker = async () => {
    while (index < sends) {
      index += 1;
      await webhook(URL1, user);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const missing = await drain(c.sockets.length, 15_000);
  const seconds = (now() - start) / 1000;
  const expected = acked.size * c.sockets.length;
  const result = {
    sockets: c.sockets.length,
    sends,
    accepted: acked.size,
    expectedReceipts: expected,
    receipts: received,
    seconds: round(seconds, 2),
    socketDeliveriesPerSec: round(received / seconds, 0),
    lost: expected - Math.min(expected, received),
    seqsIncomplete: missing,
  };
  log(JSON.stringify(result));
  await closeAll(c.sockets);
  return result;
}

async function scenarioBatch() {
  const rounds = Number(opt.rounds || 5);
  // Unmeasured rounds first: the first 1,000-message rounds are this process's JIT warming up
  // (its CPU per round 60-85 ms, then 20-40), which the 10 s scenarios amortise and 5 rounds do not.
  const warmup = Number(opt.warmup ?? 2);
  return withClients(1000, async (ids) => {
    resetCounters();
    const probe = await post(URL1, { recipientIds: [ids[0]], message: "probe" });
    if (probe.status !== 201) return { supported: false, status: probe.status };
    let lost = 0; // the warm-up's too: nothing may be lost in any round
    for (let r = 0; r < warmup; r += 1) {
      resetCounters();
      const seq = nextSeq++;
      const res = await post(URL1, { recipientIds: ids, message: `bench:${seq}` });
      if (res.status !== 201) return { supported: true, error: res.status, body: res.body.slice(0, 300) };
      const end = now() + 15_000;
      while (now() < end && (receipts.get(seq) || 0) < ids.length) await sleep(5);
      lost += ids.length - (receipts.get(seq) || 0);
      await sleep(500);
    }
    let total = 0;
    let seconds = 0;
    const perRound = [];
    for (let r = 0; r < rounds; r += 1) {
      resetCounters();
      const seq = nextSeq++;
      const cpuStart = process.cpuUsage();
      const serverCpuStart = cpuSeconds();
      const start = now();
      const res = await post(URL1, { recipientIds: ids, message: `bench:${seq}` });
      const stored = now();
      if (res.status !== 201) return { supported: true, error: res.status, body: res.body.slice(0, 300) };
      const end = now() + 15_000;
      while (now() < end && (receipts.get(seq) || 0) < ids.length) await sleep(5);
      const elapsed = (now() - start) / 1000;
      const got = receipts.get(seq) || 0;
      const cpu = process.cpuUsage(cpuStart);
      perRound.push({
        responseMs: round(stored - start, 1),
        allDeliveredMs: round(elapsed * 1000, 1),
        got,
        // CPU used meanwhile by this load generator and by the server: which side bounds it.
        loadgenCpuMs: round((cpu.user + cpu.system) / 1000, 1),
        serverCpuMs: round(1000 * (cpuSeconds() - serverCpuStart), 1),
      });
      total += got;
      lost += ids.length - got;
      seconds += elapsed;
      await sleep(500);
    }
    const result = {
      supported: true,
      recipients: ids.length,
      rounds,
      warmupRounds: warmup,
      recipientsPerSec: round(total / seconds, 0),
      perRound,
      lost,
    };
    log(JSON.stringify(result));
    return result;
  });
}

/** HTTP only, no sockets: the bare Flask app of bench/floor_app.py, 64 requests in flight. */
async function scenarioFloor() {
  const seconds = Number(opt.seconds || 10);
  const inFlight = Number(opt.inflight || 64);
  const cpuBefore = cpuSeconds();
  const start = now();
  let ok = 0;
  const end = start + seconds * 1000;
  const worker = async () => {
    while (now() < end) if ((await post(URL1, { recipientId: "floor", message: "bench:0" })).status === 201) ok += 1;
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const elapsed = (now() - start) / 1000;
  const cpu = cpuSeconds() - cpuBefore;
  const result = {
    inFlight,
    requestsPerSec: round(ok / elapsed, 0),
    serverCpuMsPerRequest: ok ? round((1000 * cpu) / ok, 3) : null,
    serverCpuShare: round(cpu / elapsed, 2),
  };
  log(JSON.stringify(result));
  return result;
}

function get(url) {
  return new Promise((resolve) => {
    http
      .get(url, { agent }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve(Buffer.concat(chunks).toString()));
      })
      .on("error", () => resolve(""));
  });
}

/** The listener's CPU seconds and messages by channel, from a process's /metrics. */
async function listenerMetrics(url) {
  const text = await get(`${url}/metrics`);
  const value = (re) => Number((re.exec(text) || [])[1] || 0);
  return {
    cpu: value(/^notify_message_queue_listener_cpu_seconds_total ([0-9.e+-]+)$/m),
    own: value(/^notify_message_queue_received_total\{channel="own"\} ([0-9.e+-]+)$/m),
    broadcast: value(/^notify_message_queue_received_total\{channel="broadcast"\} ([0-9.e+-]+)$/m),
  };
}

/**
 * N server processes (--urls, --pids in the same order), 1,000 sockets in all with user i on
 * process i % N, webhooks at a fixed --rate for --seconds, each to a random user through a
 * random process (a balancer). Summed server CPU per delivered notification, and each
 * process's CPU and the share of it its message-queue listener took.
 */
async function scenarioScale() {
  const urls = opt.urls.split(",");
  const rate = Number(opt.rate || 100);
  const seconds = Number(opt.seconds || 10);
  const c = await connectMany(users("s", Number(opt.clients || 1000)), { urlOf: (i) => urls[i % urls.length] });
  if (c.failed) log(`${c.failed} clients failed to connect`, c.failures);
  const ids = c.connectedUsers;
  const all = users("s", Number(opt.clients || 1000));
  const userIndex = ids.map((id) => all.indexOf(id));
  await sleep(1500);
  try {
    // What the processes cost with their sockets connected and nothing sent (timers, pings,
    // heartbeats): reported beside the figure, never subtracted from it.
    const idleSeconds = Number(opt.idle ?? 5);
    const idleBefore = PIDS.map((pid) => cpuSeconds([pid]));
    const idleStart = now();
    await sleep(1000 * idleSeconds);
    const idleElapsed = (now() - idleStart) / 1000;
    const idleCpu = PIDS.map((pid, i) => cpuSeconds([pid]) - idleBefore[i]);
    resetCounters();
    // The /metrics reads come before and after the CPU window, so they are not counted in it.
    const listenerBefore = await Promise.all(urls.map(listenerMetrics));
    const cpuBefore = PIDS.map((pid) => cpuSeconds([pid]));
    // --pyspy <py-spy> --pyspy-out <prefix>: each process sampled over the sending window.
    const spies = opt.pyspy
      ? PIDS.map((pid) =>
          spawn(opt.pyspy, ["record", "--pid", String(pid), "--duration", String(seconds), "--rate", "100",
            "--nonblocking", "--format", "raw", "--output", `${opt["pyspy-out"]}-${pid}.txt`], { stdio: "ignore" }))
      : [];
    const total = rate * seconds;
    const start = now();
    const pending = [];
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((now() - start) / 1000) * rate) + 1);
      while (sent < due) {
        const user = Math.floor(Math.random() * ids.length);
        // --local 1: through the recipient's own process (no push crosses processes)
        pending.push(webhook(opt.local === "1" ? urls[userIndex[user] % urls.length] : pick(urls), ids[user]));
        sent += 1;
      }
      await sleep(2);
    }
    await Promise.all(pending);
    const lost = await drain(1, 5000);
    const elapsed = (now() - start) / 1000;
    const cpuAfter = PIDS.map((pid) => cpuSeconds([pid]));
    await Promise.all(spies.map((spy) => new Promise((resolve) => (spy.exitCode !== null ? resolve() : spy.once("exit", resolve)))));
    const listenerAfter = await Promise.all(urls.map(listenerMetrics));
    const delivered = [...acked].filter((seq) => (receipts.get(seq) || 0) > 0).length;
    const processes = urls.map((url, i) => {
      const cpu = cpuAfter[i] - cpuBefore[i];
      const listener = listenerAfter[i].cpu - listenerBefore[i].cpu;
      return {
        cpuMs: round(1000 * cpu, 0),
        idleCpuMsPerSecond: idleElapsed > 0 ? round((1000 * idleCpu[i]) / idleElapsed, 1) : null,
        listenerCpuMs: round(1000 * listener, 0),
        listenerShare: cpu > 0 ? round(listener / cpu, 3) : null,
        received: {
          own: listenerAfter[i].own - listenerBefore[i].own,
          broadcast: listenerAfter[i].broadcast - listenerBefore[i].broadcast,
        },
      };
    });
    const summed = cpuAfter.reduce((a, b) => a + b, 0) - cpuBefore.reduce((a, b) => a + b, 0);
    const result = {
      processes: urls.length,
      clients: c.sockets.length,
      rate,
      sent,
      accepted: acked.size,
      delivered,
      lost,
      httpErrors: { ...httpErrors },
      seconds: round(elapsed, 1),
      summedCpuMs: round(1000 * summed, 0),
      cpuMsPerDelivered: delivered ? round((1000 * summed) / delivered, 3) : null,
      idleCpuMsPerSecond: idleElapsed > 0 ? round((1000 * idleCpu.reduce((a, b) => a + b, 0)) / idleElapsed, 1) : null,
      maxListenerShare: Math.max(...processes.map((p) => p.listenerShare || 0)),
      perProcess: processes,
    };
    log(JSON.stringify(result));
    return result;
  } finally {
    await closeAll(c.sockets);
  }
}

const scenarios = {
  scale: scenarioScale,
  floor: scenarioFloor,
  connect: scenarioConnect,
  latency: scenarioLatency,
  throughput: () => scenarioThroughput(),
  socket: scenarioSocket,
  fanout: scenarioFanout,
  batch: scenarioBatch,
  two: () => scenarioThroughput({ split: true }),
};

const hardStop = setTimeout(() => {
  log("scenario exceeded its time bound");
  process.exit(2);
}, Number(opt.limit || 120) * 1000);
hardStop.unref();

const result = await scenarios[scenario]();
console.log(JSON.stringify({ scenario, label: opt.label, ...result }));
process.exit(0);
