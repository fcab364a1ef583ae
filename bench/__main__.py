"""Run every benchmark and print one table of figures, targets and verdicts."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from bench import augment_throughput, input_pipeline

BENCHMARKS = {"augment_throughput": augment_throughput.run, "input_pipeline": input_pipeline.run}


def main() -> None:
    results = {}
    for name, run in BENCHMARKS.items():
        print(f"== {name}", flush=True)
        results[name] = run()
    rows = [r for rows in results.values() for r in rows]
    print("\n| figure | measured | target | holds |\n| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['figure']} | {row['value']} | {row['target']} | {row['holds']} |")
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.platform(), "results": rows}
    Path("bench/results.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
