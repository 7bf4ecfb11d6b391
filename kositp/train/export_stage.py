"""The ``export`` stage: merged 16-bit model, adapter alone and model card from the last trained adapter.

Both training stages are optional inputs so that a profile without DPO exports the SFT adapter;
with DPO in the run, DPO's adapter is exported (:func:`kositp.train.export.training_artifact`).
"""

from __future__ import annotations

from kositp.stages import Stage
from kositp.train.export import ExportConfig, run

STAGE = Stage(
    name="export",
    code_version="1",
    config=ExportConfig,
    run=run,
    optional_inputs=("sft", "dpo"),
    gpu=True,
    description="merge the last trained adapter into its base; adapter alone; chat template; model card",
)
