"""The ``export`` stage: the last trained adapter as a model a server can load (merged 16-bit,
adapter alone, GGUF when Unsloth is there) with its model card."""
