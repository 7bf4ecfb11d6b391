"""The reformat stage: normalized records and the instruction bank become SuperNI-style task shards."""
