"""Run every benchmark and print one table of figures, targets and verdicts."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from bench import (
    augment_throughput,
    dvc_overhead,
    input_pipeline,
    mutation,
    photos,
    scale,
    startup,
    vs_tutorial,
)
from bench.common import table, write_results

BENCHMARKS = {
    "vs_tutorial": vs_tutorial.run,
    "input_pipeline": input_pipeline.run,
    "scale": scale.run,
    "dvc_overhead": dvc_overhead.run,
    "augment_throughput": augment_throughput.run,
    "startup": startup.run,
    "photos": photos.run,
    # Not re-run here (`make mutation`, about an hour): the last scores, with the others.
    "mutation": mutation.rows,
}


def vector_isa(flags: set[str]) -> str:
    """The widest x86 vector instruction set in a CPU's flags: oneDNN picks its kernels by it,
    so two machines that differ here train to other weights ("How much do the numbers move")."""
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX")):
        if flag in flags:
            return name
    return "no AVX"


def machine() -> str:
    """CPU model and vector ISA, cores, memory and OS of this machine, in one line."""
    cpu = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.exists():
        first = {}  # the first processor's fields; the others repeat them
        for line in info.read_text().splitlines():
            key, _, value = line.partition(":")
            first.setdefault(key.strip(), value.strip())
        cpu = first.get("model name", cpu)
        if "flags" in first:
            cpu = f"{cpu} ({vector_isa(set(first['flags'].split()))})"
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, no GPU used, {platform.platform()}"
    )


def main() -> None:
    started = time.perf_counter()
    results = {}
    for name, run in BENCHMARKS.items():
        print(f"== {name}", flush=True)
        results[name] = run()
    rows = [r for rows in results.values() for r in rows]
    minutes = (time.perf_counter() - started) / 60
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "minutes": round(minutes, 1)}
    print("\n" + table(rows))
    write_results(rows, meta)


if __name__ == "__main__":
    main()
