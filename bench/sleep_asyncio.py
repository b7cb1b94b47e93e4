"""Sleep benchmark, Python asyncio: asyncio.gather of N asyncio.sleep(0.1).
Run as:  /usr/bin/python3 bench/sleep_asyncio.py N"""
import asyncio
import sys
import time

from peak_rss import peak_rss_kb  # (bench/, the script's folder)

DELAY = 0.1


async def main(n):
    t0 = time.perf_counter()
    results = await asyncio.gather(*[asyncio.sleep(DELAY, True) for _ in range(n)])
    wall = time.perf_counter() - t0
    return wall, sum(1 for r in results if r is True)


n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
wall, done = asyncio.run(main(n))
print("RESULT impl=asyncio n=%d done=%d wall=%.6f overhead=%.6f rss_kb=%d"
      % (n, done, wall, wall - DELAY, peak_rss_kb()))
sys.exit(0 if done == n else 1)
