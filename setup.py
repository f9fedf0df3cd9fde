"""Build the optional C extensions; metadata lives in pyproject.toml.

``isc_kit._md5x`` (multi-buffer MD5) and, on POSIX, ``isc_kit._scanx`` (a folder listed and lstat'ed
with the GIL released) and ``isc_kit._placex`` (many verified bodies written and renamed into place
with the GIL released once). ``optional=True``: without a working C compiler the install still
succeeds, ``isc_kit.md5batch`` falls back to hashlib, ``isc_kit.destination`` to ``os.scandir`` and
``isc_kit.placement.place_many`` to a Python loop.
"""

import sys

from setuptools import Extension, setup

# MSVC takes /O2 by default and rejects GCC flags; GCC and clang get -O3 (the kernels' loops unroll).
_ARGS = [] if sys.platform == "win32" else ["-O3"]

_EXTENSIONS = [Extension("isc_kit._md5x", ["isc_kit/_md5x.c"], extra_compile_args=_ARGS, optional=True)]
if sys.platform != "win32":  # dirent, fstatat and POSIX threads
    _EXTENSIONS.append(
        Extension("isc_kit._scanx", ["isc_kit/_scanx.c"], extra_compile_args=_ARGS, optional=True)
    )
    _EXTENSIONS.append(
        Extension("isc_kit._placex", ["isc_kit/_placex.c"], extra_compile_args=_ARGS, optional=True)
    )

setup(ext_modules=_EXTENSIONS)
