"""Which allocator Arrow uses in the processes that run this project's steps and dbt.

pyarrow's default pool on Linux is mimalloc, which keeps pages other threads freed in the
heaps of the threads that allocated them (Arrow's CPU and I/O pools); ``release_unused()``
collects the calling thread's heap only. pyarrow's jemalloc pool hands freed pages back to the
OS within its decay time (about a second, by a background thread, idle or not). At 1e7 events
(BENCHMARKS.md, round five): a run worker kept 927 MiB after the raw steps with mimalloc, 595
MiB with jemalloc; the full load peaked at 3,700 MiB with jemalloc in the run worker and the
dbt process, 3,938-3,970 MiB with mimalloc, and it was not slower in the same session. A
decay of 0 (pages back at once) made the full refresh 20 % slower: not used.
"""

from __future__ import annotations

import logging
import os

import pyarrow as pa

log = logging.getLogger(__name__)

#: Arrow's own variable: when set, its choice is kept.
ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def use_returning_memory_pool() -> str:
    """Make Arrow's default pool one that returns freed memory to the OS (jemalloc, else the
    system allocator), unless ``ARROW_DEFAULT_MEMORY_POOL`` chose one; returns the pool's
    backend name. Idempotent; only allocations made after the call use the new pool."""
    if os.environ.get(ARROW_POOL_VARIABLE):
        return str(pa.default_memory_pool().backend_name)
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc (Windows wheels)
        pool = pa.system_memory_pool()
    if pa.default_memory_pool().backend_name != pool.backend_name:
        pa.set_memory_pool(pool)
        log.debug("Arrow memory pool: %s", pool.backend_name)
    return str(pool.backend_name)
