"""Input stage: feed lists, hardened HTTP fetching, per-feed state, the raw zone and historical archives."""
