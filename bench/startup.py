"""Start-up: the lightest stage (split) vs a bare `import tensorflow`; stages that do not need
TensorFlow must not import it."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.common import ROOT, project_params, row, run_measured, stage_command, temp_project
from stages import sample


def imports_tensorflow(module: str) -> bool:
    """Does importing a stage module pull TensorFlow in?"""
    code = f"import sys, {module}; print('tensorflow' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return out.stdout.strip() == "True"


def run() -> list[dict]:
    params = project_params()
    with temp_project(params, [(sample.main, ["classification"])]) as root:
        split_s = min(
            run_measured(stage_command("split", "classification"), root)[0] for _ in range(3)
        )
        tf_s = min(
            run_measured([sys.executable, "-c", "import tensorflow"], root)[0] for _ in range(3)
        )
    light = ["stages.split", "stages.sample", "stages.augment", "stages.plot"]
    heavy = [m for m in light if imports_tensorflow(m)]
    ratio = split_s / tf_s
    print(
        f"startup: split {split_s:.2f}s, import tensorflow {tf_s:.2f}s, ratio {ratio:.2f}; "
        f"TensorFlow imported by: {heavy or 'none'}"
    )
    return [
        row(
            "split stage (1,788 images) / bare import tensorflow",
            round(ratio, 2),
            "< 1.0",
            ratio < 1.0,
        ),
        row("stages importing TensorFlow without needing it", len(heavy), "0", not heavy),
    ]
