"""``kositp eval``: zero-shot evaluation of any model folder, outside the pipeline."""

from __future__ import annotations

import inspect
import json
import typing
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic.fields import FieldInfo

from kositp.cli.application import app, configure_logging
from kositp.evaluate.config import EvaluateConfig


def eval_(
    model: Annotated[
        str,
        typer.Option(
            help="a model reference as a profile's base_model takes it (folder, Hub id, tiny-llama[...], "
            "PATH.gguf, package:NAME), or the served model name with --backend openai"
        ),
    ],
    data_dir: Annotated[Path, typer.Option(help=EvaluateConfig.model_fields["data_dir"].description)],
    out: Annotated[
        Path, typer.Option(help="output folder: predictions.parquet, metrics.json, report.md, f1.png")
    ],
    json_: Annotated[bool, typer.Option("--json", help="one final JSON line with per-set metrics")] = False,
    held_in_shards: Annotated[
        Path | None,
        typer.Option(help="with --held-in: a reformat artifact folder whose shards/*/validation.parquet are scored"),
    ] = None,
    base_model: Annotated[
        str | None, typer.Option(help="with --held-in: the base model to compare with (any model reference)")
    ] = None,
    **settings: Any,
) -> None:
    """Zero-shot macro F1 on the seed's Korean classification sets."""
    configure_logging()
    from pydantic import ValidationError

    from kositp.errors import PermanentError
    from kositp.evaluate.backends import BackendError
    from kositp.evaluate.stage import HeldInSource, evaluate_to
    from kositp.reporting import ConsoleReporter

    try:
        config = EvaluateConfig(data_dir=str(data_dir), served_model=model, **_config_values(settings))
        if config.held_in and held_in_shards is None:
            raise typer.BadParameter("--held-in needs --held-in-shards (a reformat artifact folder)")
        loadable = model if config.backend == "openai" else _loadable(model)
        source = None
        if held_in_shards is not None:
            source = HeldInSource(held_in_shards, _loadable(base_model) if base_model else None)
        _, metrics = evaluate_to(out, loadable, config, ConsoleReporter(), None, model, source)
    except (PermanentError, BackendError, ValidationError, KeyError, OSError, typer.BadParameter) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if json_:
        typer.echo(json.dumps({"sets": metrics}, ensure_ascii=False))
    else:
        typer.echo(f"wrote {out}/predictions.parquet, metrics.json, report.md, f1.png")


def _loadable(ref: str) -> str:
    """A folder or Hub id transformers can load, for any reference a profile's base_model takes."""
    from kositp.models.refs import ModelRef, model_cache_dir

    return ModelRef.parse(ref).resolve(model_cache_dir())


# Every other option is a field of EvaluateConfig, with its type, default, choices and help: the
# stage's profile section and this command can never disagree. These two come from the arguments.
_SET_BY_THE_COMMAND = ("data_dir", "served_model")


def _option(name: str, field: FieldInfo) -> inspect.Parameter:
    """One ``--name`` option for an EvaluateConfig field; a list is given comma-separated."""
    annotation, default = field.annotation, field.get_default(call_default_factory=True)
    help_text = field.description or name
    if typing.get_origin(annotation) is list:
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        choices = ", ".join(map(str, extra.get("choices") or typing.get_args(typing.get_args(annotation)[0])))
        annotation, default = str, ",".join(map(str, default))
        help_text = f"{help_text}, comma-separated ({choices})"
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[annotation, typer.Option(help=help_text)]
    )


def _config_values(settings: dict[str, Any]) -> dict[str, Any]:
    """Command-line values as EvaluateConfig takes them (lists split at commas)."""
    fields = EvaluateConfig.model_fields
    return {
        name: [v.strip() for v in value.split(",") if v.strip()]
        if typing.get_origin(fields[name].annotation) is list
        else value
        for name, value in settings.items()
    }


def _with_config_options(command: Any) -> Any:
    """Give ``command`` (its ``**settings``) one option per EvaluateConfig field, then register it."""
    hints = typing.get_type_hints(command, include_extras=True)
    fixed = [
        p.replace(annotation=hints[p.name])
        for p in inspect.signature(command).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    generated = [
        _option(name, field) for name, field in EvaluateConfig.model_fields.items() if name not in _SET_BY_THE_COMMAND
    ]
    command.__signature__ = inspect.Signature([*fixed, *generated], return_annotation=None)
    command.__annotations__ = {p.name: p.annotation for p in (*fixed, *generated)}
    return app.command("eval")(command)


eval_ = _with_config_options(eval_)
