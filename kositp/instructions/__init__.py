"""The instruction bank: per-task Korean instructions, validated, from an API or the offline bank."""
