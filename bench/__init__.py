"""`make bench`: tagging throughput and the cost of the full parse+normalize+tag path over a feed corpus."""
