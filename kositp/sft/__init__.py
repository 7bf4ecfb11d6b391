"""The ``sft`` stage: LoRA supervised fine-tuning of the base model on reformat's task shards."""
