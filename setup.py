"""Build the optional C extension ``isc_kit._md5x`` (multi-buffer MD5); metadata lives in pyproject.toml.

``optional=True``: without a working C compiler the install still succeeds and
``isc_kit.md5batch`` falls back to hashlib.
"""

import sys

from setuptools import Extension, setup

# MSVC takes /O2 by default and rejects GCC flags; GCC and clang get -O3 (the kernels' loops unroll).
_ARGS = [] if sys.platform == "win32" else ["-O3"]

setup(ext_modules=[Extension("isc_kit._md5x", ["isc_kit/_md5x.c"], extra_compile_args=_ARGS, optional=True)])
