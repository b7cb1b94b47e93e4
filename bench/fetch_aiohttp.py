"""Fetch benchmark, Python aiohttp: N GETs of URL with at most LIMIT in flight,
one ClientSession (its connector allows LIMIT connections), each request a
task under an asyncio.Semaphore(LIMIT), all gathered, the body read.
Run as:  /usr/bin/python3 bench/fetch_aiohttp.py URL [N] [LIMIT]"""
import asyncio
import sys
import time

import aiohttp

from peak_rss import peak_rss_kb  # (bench/, the script's folder)


async def main(url, n, limit):
    sem = asyncio.Semaphore(limit)
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one():
            async with sem:
                async with session.get(url) as r:
                    return r.status, await r.read()

        t0, c0 = time.perf_counter(), time.process_time()
        results = await asyncio.gather(*[one() for _ in range(n)])
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    size = len(results[0][1])
    ok = sum(1 for status, body in results if status == 200 and len(body) == size)
    return wall, cpu, ok


url = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
limit = int(sys.argv[3]) if len(sys.argv) > 3 else 100
wall, cpu, ok = asyncio.run(main(url, n, limit))
print("RESULT impl=aiohttp n=%d ok=%d wall=%.6f rps=%.1f cpu=%.3f rss_kb=%d"
      % (n, ok, wall, n / wall, cpu, peak_rss_kb()))
sys.exit(0 if ok == n else 1)
