"""Zero-shot evaluation on the seed's four Korean classification sets (KorNLI, question pair,
hate speech, NSMC): loaders, prompts, scoring backends, metrics and the report."""
