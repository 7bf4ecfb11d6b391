"""Layering rules from the design: the library knows nothing of Prefect, heavy optional
packages are imported lazily, and tasks/ stays free of model internals."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_library_never_imports_prefect_at_module_level():
    offenders = [p for p in (ROOT / "kositp").rglob("*.py") if "prefect" in _imports(p, top_level_only=True)]
    assert offenders == []


def test_library_has_no_prefect_import_outside_the_cli_entry_point():
    offenders = [
        p.relative_to(ROOT)
        for p in (ROOT / "kositp").rglob("*.py")
        if "cli" not in p.parts and {"prefect", "flows", "tasks"} & _imports(p, top_level_only=False)
    ]
    assert offenders == []


def test_unsloth_and_vllm_are_never_imported_at_module_level():
    offenders = [
        p.relative_to(ROOT)
        for folder in ("kositp", "tasks", "flows")
        for p in (ROOT / folder).rglob("*.py")
        if {"unsloth", "vllm"} & _imports(p, top_level_only=True)
    ]
    assert offenders == []


def test_tasks_and_flows_know_nothing_of_model_internals():
    heavy = {"torch", "transformers", "peft", "trl", "unsloth", "vllm"}
    offenders = [
        p.relative_to(ROOT)
        for folder in ("tasks", "flows")
        for p in (ROOT / folder).rglob("*.py")
        if heavy & _imports(p, top_level_only=False)
    ]
    assert offenders == []


def test_the_command_line_starts_without_the_stages_heavy_libraries():
    """Every command registered (as for ``kositp --help``); a stage's libraries at module level
    made even ``kositp ingest --help`` take 1.4 s (scikit-learn alone 0.7 s). They load when a
    command runs, and so do tqdm's bars (24 ms), which few commands show."""
    script = "import sys; from kositp.cli import app; print(' '.join(sorted(m for m in {modules!r} if m in sys.modules)))"
    heavy = ("sklearn", "pandas", "torch", "transformers", "openai", "prefect", "ijson", "charset_normalizer", "tqdm")
    done = subprocess.run([sys.executable, "-c", script.format(modules=heavy)], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    assert done.stdout.split() == []


def test_a_command_imports_its_own_module_only():
    """The other command modules bring the profiles (pydantic models) and Prefect's settings:
    70 ms of every ``kositp ingest`` start."""
    script = ("import sys; from kositp.cli import register; register('ingest'); "
              "print(' '.join(sorted(m for m in sys.modules if m.startswith(('kositp.cli.', 'kositp.config', 'prefect')))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.split() == ["kositp.cli.application", "kositp.cli.ingest_cmd"]


def test_every_command_is_found_in_the_module_named_for_it():
    from kositp.cli import COMMAND_MODULES, app

    found = {command.name or command.callback.__name__: command.callback.__module__ for command in app.registered_commands}
    found |= {group.name: group.typer_instance.registered_commands[0].callback.__module__ for group in app.registered_groups}
    assert found == {name: f"kositp.cli.{module}" for name, module in COMMAND_MODULES.items()}
