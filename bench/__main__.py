"""Run every benchmark and print one table of figures, targets and verdicts."""

from __future__ import annotations

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
