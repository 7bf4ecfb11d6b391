"""Credentials from Prefect Secret blocks, for workers that have no environment variables set.

The library reads credentials from the environment only (``kositp.secrets``). On a Prefect
worker, a Secret block named after the variable in kebab case (``openai-api-key`` for
``OPENAI_API_KEY``, ``hf-token`` for ``HF_TOKEN``) fills that variable for this process when it
is not set already. Values are never logged.
"""

from __future__ import annotations

import os

from prefect.blocks.system import Secret

from kositp.secrets import SECRET_ENV_VARS


def block_name(env_var: str) -> str:
    return env_var.lower().replace("_", "-")


def export_secret_blocks(env_vars: tuple[str, ...] = SECRET_ENV_VARS) -> list[str]:
    """Set each unset variable from its Secret block where one exists; returns the names set."""
    exported = []
    for env_var in env_vars:
        if os.environ.get(env_var):
            continue
        try:
            value = Secret.load(block_name(env_var)).get()
        except ValueError:
            continue
        os.environ[env_var] = str(value)
        exported.append(env_var)
    return exported
