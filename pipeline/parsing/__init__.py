"""Parse and normalize: bytes (feeds, wire text) to Story records: clean text, UTC dates, canonical URLs."""
