"""Topic tagging against the versioned taxonomy (schemas/topics.yaml), with evidence, and its evaluation."""
