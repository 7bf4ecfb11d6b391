"""Layering rules from the design: the library knows nothing of Prefect, heavy optional
packages are imported lazily, tasks/ stays free of model internals, and no module imports itself
through another. (How fast commands start is a benchmark: benchmarks/bench_startup.py.)"""

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
        if "cli" not in p.parts and {"prefect", "kositp_flows", "kositp_tasks"} & _imports(p, top_level_only=False)
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


def test_every_command_is_found_in_the_module_named_for_it():
    from kositp.cli import COMMAND_MODULES, app

    found = {command.name or command.callback.__name__: command.callback.__module__ for command in app.registered_commands}
    found |= {group.name: group.typer_instance.registered_commands[0].callback.__module__ for group in app.registered_groups}
    assert found == {name: f"kositp.cli.{module}" for name, module in COMMAND_MODULES.items()}


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def _kositp_imports(path: Path, modules: set[str]) -> set[str]:
    """The kositp modules ``path`` imports anywhere (a lazy import inside a function included)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found |= {module, *(f"{module}.{alias.name}" for alias in node.names)}
    return {m for m in found if m in modules and m != name}


def test_no_module_imports_itself_through_another():
    """A circle of imports (model_refs and tiny_model were one) means two modules that are one."""
    from graphlib import CycleError, TopologicalSorter

    paths = {_module_name(p): p for p in (ROOT / "kositp").rglob("*.py")}
    graph = {name: _kositp_imports(path, set(paths)) for name, path in paths.items()}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as cycle:
        raise AssertionError(f"import circle: {' -> '.join(cycle.args[1])}") from None


def test_tasks_and_flows_are_installed_under_names_of_their_own():
    """Installed as kositp_tasks and kositp_flows from the folders the design lays out, so the
    distribution claims no global ``tasks`` or ``flows`` package; every package is listed."""
    import tomllib

    from setuptools import find_packages

    listed = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
    assert sorted(listed) == sorted([*find_packages(str(ROOT), include=["kositp", "kositp.*"]), "kositp_flows", "kositp_tasks"])
    script = (
        "import importlib.util as u, sys; "
        "print(*(bool(u.find_spec(n)) for n in ('kositp_flows.pipeline', 'kositp_tasks.stage_tasks', 'flows', 'tasks')))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd="/")
    assert done.stdout.split() == ["True", "True", "False", "False"]
