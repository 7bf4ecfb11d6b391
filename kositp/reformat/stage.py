"""The ``reformat`` stage: records + instruction bank -> 22 task shards, metadata and a data card.

Incremental inside the stage: every task has a sub-version (the source of every module that
builds shards, its instructions, the records' version, the parameters that shape it). Built task
shards are kept in ``<cache>/reformat/<sub-version>/``; a rerun where one task's instructions
changed rebuilds that task only and copies the others from the cache, and a code change anywhere
on the shard-building path (a builder, a helper it calls, sampling, decontamination) rebuilds all.

This module is what planning reads (the section, the external inputs' fingerprint); the build is
:mod:`kositp.reformat.build`, imported when the stage runs.
"""

from __future__ import annotations

from kositp.reformat.config import CODE_VERSION, ReformatConfig, fingerprint
from kositp.stages import Stage, StageContext, StageOutcome


def run(ctx: StageContext) -> StageOutcome:
    from kositp.reformat.build import build

    return build(ctx)


STAGE = Stage(
    name="reformat", code_version=CODE_VERSION, config=ReformatConfig, run=run,
    inputs=("ingest", "instructions"), fingerprint=fingerprint,
    description="22 SuperNI-style task shards (train/validation) from records and the instruction bank",
)
