#!/usr/bin/env python3
"""How long this machine's disk takes to flush a small write, by how long it was
quiet before, and whether direct reads in the pause keep it awake.

The ledger journal appends one record per batch and syncs it (pwrite +
fdatasync); between two syncs the ledger builds the next batch, about 0.2 ms
during which it does no I/O. On virtual disks a flush after such a pause costs
several times one made right after other I/O. `--ledger-journal-awake on` fills
the pause with direct reads of the journal's first block. This script shows the
effect on the machine it runs on, with no server:

    python3 benches/scripts/flush_latency.py [DIR]   # DIR on the data disk

Prints, per pause before each sync, the median and 90th percentile sync time:
first with nothing in the pause, then with direct 4 KiB reads of the file's first
block one after another in the pause (what the journal's keep-awake thread does).
"""
import mmap
import os
import shutil
import statistics
import sys
import tempfile
import time

RECORD_BYTES = 10_500  # one batch of ~28 checkouts, as measured
PAUSES_MS = [0.0, 0.05, 0.1, 0.2, 0.5, 2.0]
SECONDS_EACH = 1.0


def run(fd, rfd, pause_s, awake):
    block = mmap.mmap(-1, 4096)  # page aligned, as O_DIRECT wants
    record = b"x" * RECORD_BYTES
    offset, syncs, reads = 0, [], 0
    end = time.monotonic() + SECONDS_EACH
    while time.monotonic() < end:
        start = time.perf_counter()
        os.pwrite(fd, record, offset)
        os.fdatasync(fd)
        syncs.append(time.perf_counter() - start)
        offset = (offset + RECORD_BYTES) % (8 << 20)
        until = time.perf_counter() + pause_s
        while time.perf_counter() < until:  # the ledger building a batch
            if awake:
                os.preadv(rfd, [block], 0)
                reads += 1
    syncs.sort()
    return statistics.median(syncs) * 1e3, syncs[len(syncs) * 9 // 10] * 1e3, len(syncs), reads


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else os.getcwd()
    work = tempfile.mkdtemp(prefix="flush-latency-", dir=base)
    try:
        path = os.path.join(work, "journal")
        fd = os.open(path, os.O_RDWR | os.O_CREAT)
        os.pwrite(fd, b"\0" * (16 << 20), 0)  # written through, like the journal
        os.fsync(fd)
        try:
            rfd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        except OSError as e:
            print(f"direct reads refused here ({e}): only the first column is measured")
            rfd = None
        print(f"record {RECORD_BYTES} bytes, {SECONDS_EACH:.0f} s per line, in {work}")
        print(f"{'pause ms':>9} | {'quiet: median ms':>16} {'p90 ms':>7} {'syncs':>6} | "
              f"{'reads in pause: median ms':>25} {'p90 ms':>7} {'syncs':>6} {'reads':>7}")
        for pause in PAUSES_MS:
            q = run(fd, None, pause / 1e3, False)
            line = f"{pause:>9.2f} | {q[0]:>16.3f} {q[1]:>7.3f} {q[2]:>6}"
            if rfd is not None:
                a = run(fd, rfd, pause / 1e3, True)
                line += f" | {a[0]:>25.3f} {a[1]:>7.3f} {a[2]:>6} {a[3]:>7}"
            print(line, flush=True)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
