"""The benchmarks' shared reading: peak RSS in KiB, VmHWM from /proc/self/status."""


def peak_rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1
