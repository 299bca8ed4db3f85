"""glibc malloc settings for the operator process (ADR 0012).

At start the operator lists every task, Job and pod (before ADR 0013 kopf listed them all
again): hundreds of MB of short-lived objects (HTTP bodies, decoded JSON) allocated while the
cache's long-lived objects are allocated in between. glibc's default *dynamic* mmap
threshold grows each time a large mmapped block is freed (up to 32 MB), so after the
first listing the large buffers of the next ones come from the heap instead of mmap,
and the heap's free memory is returned to the system only from its top (the trim
threshold rises with the mmap threshold). Fixing both thresholds at 128 KiB, glibc's
initial value, keeps large buffers in mmap (returned when freed) and trims the heap's
top eagerly: with 10,000 tasks, the peak RSS was ~40 MB lower and the RSS after
converging ~25 MB lower on average (docs/performance.md), at no measurable CPU cost.

The same as ``MALLOC_TRIM_THRESHOLD_=131072 MALLOC_MMAP_THRESHOLD_=131072``, but held
however the process is started. An explicit setting in the environment wins. Elsewhere
than Linux/glibc (musl, macOS) nothing is done.

What is not done, measured: ``M_ARENA_MAX`` (the thread arenas hold ~7 MB), and
``malloc_trim(0)`` (the heap's free memory after converging is 20-45 MB). Most of the
RSS that stays is pymalloc's, in 1 MiB arenas pinned by a few live objects each, which
no malloc setting reaches.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping

# <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 128 * 1024

_ENV_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


def glibc_version() -> str | None:
    """The C library's version if it is glibc (e.g. ``"glibc 2.36"``), else None."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return None


def tune_malloc(environ: Mapping[str, str] | None = None, libc_version: str | None = "detect") -> bool:
    """Fix glibc's trim and mmap thresholds at 128 KiB; whether it was done.

    Call once, early, before the big allocations. A no-op (False) without glibc, or
    when the environment sets either threshold (or any ``glibc.malloc`` tunable)."""
    env = os.environ if environ is None else environ
    if any(name in env for name in _ENV_SETTINGS) or "glibc.malloc." in env.get("GLIBC_TUNABLES", ""):
        return False
    version = glibc_version() if libc_version == "detect" else libc_version
    if not version or not version.startswith("glibc"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success. M_TRIM_THRESHOLD also turns the dynamic thresholds off;
    # M_MMAP_THRESHOLD undoes any rise that happened before this call (during the imports).
    trim = int(mallopt(M_TRIM_THRESHOLD, THRESHOLD_BYTES))
    mmap = int(mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))
    return trim == 1 and mmap == 1
