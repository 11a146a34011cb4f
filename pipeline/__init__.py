"""wirefeed: wire-feed ingestion pipeline (fetch, parse, normalize, tag, Parquet, land, validate)."""

import os

__version__ = "0.1.0"

# Arrow's allocator for the whole process, set before anything imports pyarrow: jemalloc, not the wheel's
# default mimalloc, which backs its segments with transparent huge pages and returns freed ones at once, so
# the kernel zeroes 2 MiB pages again and again (a fifth of a backfill parent's CPU, mostly system time).
# pipeline/lake/parquet.py also sets pyarrow's pool, but Arrow's C++ code (Parquet, IPC, compute) allocates
# from the default this variable chooses, read once. A value the user set is left alone.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
