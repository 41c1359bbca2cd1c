// The "Scale out" section of bench/RESULTS.md from the scale-<mode>-<n>-scale.json files in
// $BENCH_OUT (run.sh's `scale` scenario). `--splice FILE` replaces the section in FILE (or
// appends it); without it the section goes to stdout. report.mjs includes it too.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const HEADING = "## Scale out: routed vs broadcast";
const BOUND = 1.2;

function load(dir, mode, n) {
  try {
    const text = fs.readFileSync(path.join(dir, `scale-${mode}-${n}-scale.json`), "utf8");
    return JSON.parse(text.trim().split("\n").pop());
  } catch {
    return null;
  }
}

export function scaleSection(dir = process.env.BENCH_OUT) {
  const counts = [1, 2, 4, 8].filter((n) => load(dir, "routed", n) || load(dir, "broadcast", n));
  if (!counts.length) return null;
  const rows = [];
  const shares = [];
  for (const n of counts) {
    const cells = [];
    for (const mode of ["routed", "broadcast"]) {
      const r = load(dir, mode, n);
      if (!r || r.error) {
        cells.push("–", "–", "–");
        continue;
      }
      cells.push(
        `${r.cpuMsPerDelivered}`,
        `${Math.round(100 * r.maxListenerShare * 10) / 10} %`,
        `${r.delivered} of ${r.accepted} (lost ${r.lost})`,
      );
      shares.push(
        `| ${mode} | ${n} | ${r.perProcess.map((p) => `${Math.round(1000 * (p.listenerShare || 0)) / 10} % (${p.received.own}+${p.received.broadcast})`).join(", ")} |`,
      );
    }
    rows.push(`| ${n} | ${cells.join(" | ")} |`);
  }
  const first = load(dir, "routed", counts[0]);
  const last = load(dir, "routed", counts[counts.length - 1]);
  const ratio = first && last ? last.cpuMsPerDelivered / first.cpuMsPerDelivered : null;
  const b1 = load(dir, "broadcast", counts[0]);
  const b8 = load(dir, "broadcast", counts[counts.length - 1]);
  const bratio = b1 && b8 ? b8.cpuMsPerDelivered / b1.cpuMsPerDelivered : null;
  const sample = first || b1;
  const idle = ["routed", "broadcast"].map(
    (mode) => `${mode} ${counts.map((n) => `${n}: ${load(dir, mode, n)?.idleCpuMsPerSecond ?? "–"}`).join(", ")}`,
  );
  return `${HEADING}

Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC with
\`TARGETS=ours SCENARIOS=scale bash bench/run.sh\`: ${counts.join(", ")} server processes on this
machine (each one gunicorn worker, all on the same Redis), ${sample?.clients ?? 1000} sockets in all
(user *i* on process *i* mod N), webhooks at a fixed ${sample?.rate ?? "?"}/s for ${sample?.seconds ?? "?"} s
to random users, each through a random process (a balancer). Every process count is started
fresh, once routed (\`ROUTED_DELIVERY=1\`, the default) and once broadcast (\`ROUTED_DELIVERY=0\`:
every push to every process, as before routing), in the same run. CPU is the processes' own
(\`/proc/<pid>/stat\`, user + system) over the sending and the drain; the listener's share is
the CPU its message-queue listener spent handling what it received
(\`notify_message_queue_listener_cpu_seconds_total\` over the process's CPU). The /metrics reads
that take those counters come before and after the CPU window, and the window closes before
the sockets' first Engine.IO ping (25 s after they connected).

| processes | routed: summed server CPU ms per delivered | routed: highest listener share | routed: delivered | broadcast: summed server CPU ms per delivered | broadcast: highest listener share | broadcast: delivered |
|---|---|---|---|---|---|---|
${rows.join("\n")}

Idle, the 5 s before the sends (sockets connected, nothing sent), summed server CPU in ms per
second (reported, not subtracted): ${idle.join("; ")}.

**Bound: summed CPU per delivered notification at ${counts[counts.length - 1]} processes within ${BOUND}× of 1 process, routed:
${ratio ? `${ratio.toFixed(2)}× — ${ratio <= BOUND ? "met" : "NOT met"}` : "not measured"}** (broadcast: ${bratio ? `${bratio.toFixed(2)}×` : "–"}).

Each process's listener share (messages received on its own channel + on the broadcast channel):

| mode | processes | per process |
|---|---|---|
${shares.join("\n")}
`;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const section = scaleSection();
  const at = process.argv.indexOf("--splice");
  if (at < 0) {
    process.stdout.write(section ?? "no scale results\n");
  } else if (section) {
    const file = process.argv[at + 1];
    const text = fs.readFileSync(file, "utf8");
    const start = text.indexOf(HEADING);
    let next = start < 0 ? -1 : text.indexOf("\n## ", start + HEADING.length);
    if (next < 0) next = text.length;
    const updated = start < 0 ? `${text.trimEnd()}\n\n${section}` : `${text.slice(0, start)}${section}${text.slice(next)}`;
    fs.writeFileSync(file, updated);
  }
}
