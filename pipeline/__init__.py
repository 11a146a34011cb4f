"""wirefeed: wire-feed ingestion pipeline (fetch, parse, normalize, tag, Parquet, land, validate)."""

__version__ = "0.1.0"
