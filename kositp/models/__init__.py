"""Everything about the models the pipeline trains and serves: references (:mod:`.refs`), loading,
scoring and generation (:mod:`.causal_lm`), the locally built tiny model (:mod:`.tiny`), GGUF files
(:mod:`.gguf`) and the seed's prompt format (:mod:`.prompt_format`)."""
