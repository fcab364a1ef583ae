"""bench/: the machine line every measurement is recorded with."""

from __future__ import annotations

import pytest

from bench.__main__ import vector_isa


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"fpu", "avx", "avx2", "fma", "avx512f", "avx512bw"}, "AVX-512"),
        ({"fpu", "avx", "avx2", "fma"}, "AVX2"),
        ({"fpu", "sse4_2", "avx"}, "AVX"),
        ({"fpu", "sse4_2"}, "no AVX"),
        # avx512f, the foundation every AVX-512 CPU lists, is the flag that names AVX-512
        ({"avx2", "avx512vl"}, "AVX2"),
    ],
)
def test_the_widest_vector_isa_is_named_from_the_cpu_flags(flags, expected):
    assert vector_isa(flags) == expected
