// Fetch benchmark, Node.js: N GETs of URL with at most LIMIT in flight, with
// Node's global fetch (undici, its default global dispatcher: keep-alive
// connections per origin), each request awaited under a small semaphore, all
// with Promise.all, the body read.
// Run as:  /usr/bin/node bench/fetch_node.mjs URL [N] [LIMIT]
import { readFileSync } from "node:fs";

const url = process.argv[2];
const n = Number(process.argv[3] ?? 10000);
const limit = Number(process.argv[4] ?? 100);

function peakRssKb() {
  const m = /VmHWM:\s*(\d+)/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) : -1;
}

// a counting semaphore: at most `limit` holders, the rest wait in order
let free = limit;
const waiters = [];
const acquire = () => (free > 0 ? (free--, Promise.resolve()) : new Promise((r) => waiters.push(r)));
const release = () => { const w = waiters.shift(); if (w) w(); else free++; };

async function one() {
  await acquire();
  try {
    const r = await fetch(url);
    return [r.status, await r.arrayBuffer()];
  } finally {
    release();
  }
}

const t0 = performance.now(), c0 = process.cpuUsage();
const results = await Promise.all(Array.from({ length: n }, one));
const wall = (performance.now() - t0) / 1000;
const c1 = process.cpuUsage(c0), cpu = (c1.user + c1.system) / 1e6;
const size = results[0][1].byteLength;
let ok = 0;
for (const [status, body] of results) if (status === 200 && body.byteLength === size) ok++;
console.log(`RESULT impl=node n=${n} ok=${ok} wall=${wall.toFixed(6)} ` +
            `rps=${(n / wall).toFixed(1)} cpu=${cpu.toFixed(3)} rss_kb=${peakRssKb()}`);
process.exitCode = ok === n ? 0 : 1;
