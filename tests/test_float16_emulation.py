"""conftest.float16_hidden: when `make test-isa`'s cap of oneDNN cannot stand in for a CPU in
float16, and only then."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests import conftest

FP16_CPU = "flags : fpu sse avx2 avx512f avx512bw avx512_fp16 amx_bf16 amx_tile"
AVX512_CPU = "flags : fpu sse avx2 avx512f avx512bw avx512_bf16"


@pytest.mark.parametrize("cap", ["AVX2", "avx512_core", "AVX512_CORE_BF16"])
def test_a_cap_below_the_float16_units_of_a_cpu_that_has_them_hides_them(cap):
    reason = conftest.float16_hidden({"ONEDNN_MAX_CPU_ISA": cap}, FP16_CPU)
    assert reason is not None
    assert f"ONEDNN_MAX_CPU_ISA={cap.upper()}" in reason and "avx512_fp16" in reason
    assert "TF_ENABLE_ONEDNN_OPTS=0" in reason  # where the float16 path is tested instead


@pytest.mark.parametrize(
    "env, cpuinfo",
    [
        ({}, FP16_CPU),  # no cap: the real CPU
        ({"ONEDNN_MAX_CPU_ISA": "ALL"}, FP16_CPU),
        ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_FP16"}, FP16_CPU),  # the cap keeps float16
        ({"ONEDNN_MAX_CPU_ISA": "AVX10_1_512_AMX"}, FP16_CPU),
        ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, AVX512_CPU),  # no float16 units to hide
        ({"ONEDNN_MAX_CPU_ISA": "AVX2", "TF_ENABLE_ONEDNN_OPTS": "0"}, FP16_CPU),  # no oneDNN
    ],
)
def test_otherwise_the_float16_tests_run(env, cpuinfo):
    assert conftest.float16_hidden(env, cpuinfo) is None


def test_every_test_that_computes_in_float16_carries_the_marker():
    # So the skip reaches them all: a float16 policy set in a test marked otherwise would fail
    # under the cap for want of a kernel, not of a bug.
    unmarked = []
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
                continue
            sets_float16 = any(
                isinstance(call, ast.Call)
                and getattr(call.func, "attr", "") == "set_global_policy"
                and any(getattr(a, "value", None) == "mixed_float16" for a in call.args)
                for call in ast.walk(node)
            )
            marked = any("float16" in ast.unparse(d) for d in node.decorator_list)
            if sets_float16 and not marked:
                unmarked.append(f"{path.name}::{node.name}")
    assert not unmarked
