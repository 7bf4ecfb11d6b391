"""Keep credentials out of logs, manifests and artifacts.

Secrets are read from the environment only when needed (or handed over by the orchestrator,
e.g. from a Prefect Secret block); anything that is written down passes through :func:`redact`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "***"
# Whole-word endings: ``hf_token`` and ``openai_api_key`` are secrets, ``max_tokens`` and
# ``api_key_env`` (the name of a variable) are not.
_SECRET_KEY = re.compile(r"(^|[_-])(api[_-]?key|token|secret|password|passwd|authorization|credentials?)$", re.IGNORECASE)
SECRET_ENV_VARS = ("OPENAI_API_KEY", "KOSITP_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


def _secret_values() -> list[str]:
    return [v for name in SECRET_ENV_VARS if len(v := os.environ.get(name, "")) >= 6]


def redact(value: Any, _secrets: list[str] | None = None) -> Any:
    """Copy of ``value`` with secret-named keys masked and known secret values scrubbed from strings."""
    secrets = _secret_values() if _secrets is None else _secrets
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) and v not in (None, "") else redact(v, secrets))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    return value


def get_secret(env_var: str) -> str | None:
    """A credential from the environment, or None; never logged."""
    found = os.environ.get(env_var)
    return found or None
