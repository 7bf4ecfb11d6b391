"""``kositp eval``: zero-shot evaluation of any model folder, outside the pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from kositp.cli import app, configure_logging
from kositp.evaluate.loaders import SETS


@app.command("eval")
def eval_(
    model: Annotated[str, typer.Option(help="model folder (or the served model name with --backend openai)")],
    data_dir: Annotated[
        Path, typer.Option(help="one folder per set: kornli/, kor_question_pair/, korean_hate_speech/, nsmc/")
    ],
    out: Annotated[
        Path, typer.Option(help="output folder: predictions.parquet, metrics.json, report.md, f1.png")
    ],
    sets: Annotated[str, typer.Option(help="comma-separated sets")] = ",".join(SETS),
    limit: Annotated[int | None, typer.Option(help="at most N examples per set (seeded sample)")] = None,
    method: Annotated[str, typer.Option(help="choice | generate")] = "choice",
    backend: Annotated[str, typer.Option(help="auto | hf | vllm | openai")] = "auto",
    batch_size: Annotated[int, typer.Option(help="sequences per forward pass")] = 8,
    seed: Annotated[int, typer.Option(help="sampling / bootstrap / --limit seed")] = 0,
    nsmc_sample: Annotated[bool, typer.Option(help="the seed's stratified 20% NSMC sample")] = False,
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible server for --backend openai")
    ] = None,
    vllm_python: Annotated[str | None, typer.Option(help="python of the vLLM environment")] = None,
    json_: Annotated[bool, typer.Option("--json", help="one final JSON line with per-set metrics")] = False,
) -> None:
    """Zero-shot macro F1 on the seed's Korean classification sets."""
    configure_logging()
    from pydantic import ValidationError

    from kositp.evaluate.backends import BackendError
    from kositp.evaluate.loaders import EvalDataError
    from kositp.evaluate.stage import EvaluateConfig, evaluate_to
    from kositp.model_refs import require_model
    from kositp.reporting import ConsoleReporter

    try:
        if backend != "openai":
            require_model(model)
        config = EvaluateConfig(
            data_dir=str(data_dir),
            sets=[s.strip() for s in sets.split(",") if s.strip()],
            limit=limit,
            method=method,
            backend=backend,
            batch_size=batch_size,
            seed=seed,
            nsmc_sample=nsmc_sample,
            base_url=base_url,
            vllm_python=vllm_python,
            served_model=model,
        )
        _, metrics = evaluate_to(out, model, config, ConsoleReporter(), None, model)
    except (EvalDataError, BackendError, ValidationError, KeyError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if json_:
        typer.echo(json.dumps({"sets": metrics}, ensure_ascii=False))
    else:
        typer.echo(f"wrote {out}/predictions.parquet, metrics.json, report.md, f1.png")
