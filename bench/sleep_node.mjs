// Sleep benchmark, Node.js: Promise.all of N timers/promises setTimeout(100).
// Run as:  /usr/bin/node bench/sleep_node.mjs N
import { setTimeout as sleep } from "node:timers/promises";
import { readFileSync } from "node:fs";

const DELAY_MS = 100;
const n = Number(process.argv[2] ?? 100000);

function peakRssKb() {
  const m = /VmHWM:\s*(\d+)/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) : -1;
}

const t0 = performance.now();
const ps = new Array(n);
for (let i = 0; i < n; i++) ps[i] = sleep(DELAY_MS, true);  // resolves to true
const results = await Promise.all(ps);
const wall = (performance.now() - t0) / 1000;
let done = 0;
for (const r of results) if (r === true) done++;
console.log(`RESULT impl=node n=${n} done=${done} wall=${wall.toFixed(6)} ` +
            `overhead=${(wall - DELAY_MS / 1000).toFixed(6)} rss_kb=${peakRssKb()}`);
process.exitCode = done === n ? 0 : 1;
