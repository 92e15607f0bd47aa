"""The compiled kernels (curate._native, curate._tokenize, curate._dsir); everything else is declared in pyproject.toml."""

import platform

from setuptools import Extension, setup

# x86-64-v2 (SSE4.2, 2009+) keeps wheels portable; results are integer-exact on any target.
flags = ["-O3", "-march=x86-64-v2"] if platform.machine() in ("x86_64", "AMD64") else ["-O3"]

setup(
    ext_modules=[
        Extension("curate._native", ["curate/_native.c"], depends=["curate/_unicode_tables.h", "curate/_strings.h"], extra_compile_args=flags),
        Extension("curate._tokenize", ["curate/_tokenize.c"], depends=["curate/_ccnet_tables.h", "curate/_strings.h"], extra_compile_args=flags),
        Extension("curate._dsir", ["curate/_dsir.c"], depends=["curate/_dsir_tables.h", "curate/_strings.h"], extra_compile_args=flags),
        Extension("curate._signals", ["curate/_signals.c"], depends=["curate/_signals_tables.h", "curate/_strings.h"], extra_compile_args=flags),
    ]
)
