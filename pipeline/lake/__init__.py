"""The lake: object stores (local, S3), Parquet with the declared schema, exactly-once landing, validation."""
