"""Run every benchmark and print one table of figures, targets and verdicts."""

from __future__ import annotations

import sys
import time

from bench import (
    after_training,
    augment_throughput,
    dvc_overhead,
    input_pipeline,
    levers,
    mfu,
    mutation,
    photos,
    scale,
    startup,
    vs_tutorial,
)
from bench.common import machine, table, write_results

BENCHMARKS = {
    "vs_tutorial": vs_tutorial.run,
    "input_pipeline": input_pipeline.run,
    "scale": scale.run,
    "dvc_overhead": dvc_overhead.run,
    "augment_throughput": augment_throughput.run,
    "startup": startup.run,
    "photos": photos.run,
    "after_training": after_training.run,
    "mfu": mfu.run,
    "levers": levers.run,
    # Not re-run here (`make mutation`, about an hour): the last scores, with the others.
    "mutation": mutation.rows,
}


def main(argv: list[str] | None = None) -> None:
    """Every benchmark, or those named: python -m bench mfu levers"""
    names = list(sys.argv[1:] if argv is None else argv) or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise SystemExit(f"bench: unknown {', '.join(unknown)}; choices: {', '.join(BENCHMARKS)}")
    started = time.perf_counter()
    results = {}
    for name in names:
        run = BENCHMARKS[name]
        print(f"== {name}", flush=True)
        results[name] = run()
    rows = [r for rows in results.values() for r in rows]
    minutes = (time.perf_counter() - started) / 60
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "minutes": round(minutes, 1)}
    print("\n" + table(rows))
    if names == list(BENCHMARKS):  # a part does not replace the whole table
        write_results(rows, meta)


if __name__ == "__main__":
    main()
