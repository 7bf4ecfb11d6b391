"""Promotion: which exported model a profile serves, decided by a gate on zero-shot scores."""
