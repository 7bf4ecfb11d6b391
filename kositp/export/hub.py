"""The merged model pushed to the Hugging Face Hub, when the profile names a repository."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kositp.export.config import ExportConfig


def push_to_hub(merged_dir: Path, config: ExportConfig, reporter: Any) -> str | None:
    """Upload the merged model when a repo id is configured and ``HF_TOKEN`` is set; never required."""
    token = os.environ.get("HF_TOKEN")
    if not config.hub_repo_id:
        return None
    if not token:
        reporter.warning(
            f"export: hub_repo_id {config.hub_repo_id!r} is set but HF_TOKEN is not; not pushing"
        )
        return None
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(config.hub_repo_id, private=config.hub_private, exist_ok=True)
    api.upload_folder(folder_path=str(merged_dir), repo_id=config.hub_repo_id)
    reporter.info(f"export: pushed to https://huggingface.co/{config.hub_repo_id}")
    return config.hub_repo_id
