"""The ``dpo`` stage: DPO on the SFT adapter from user and/or on-policy preference pairs."""
