"""Imports live at the top of a module. One inside a function says why on its line, or in the
comment just above it (or above the group of imports it starts):

    # cycle: ...        a real import cycle (name the module that imports this one)
    # optional: ...     an optional dependency (an extra, or an app that may not be installed)
    # heavy: ...        a heavy dependency only some calls need
    # app loading: ...  the module is imported before the app registry is ready
    # lazy: ...         a deliberately lazy entry point
"""

from __future__ import annotations

import ast
import io
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("runtime", "builder", "rag", "accounts", "config")
REASON = re.compile(r"#.*\b(cycle|optional|heavy|app loading|lazy):\s*\S")
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
IMPORTS = (ast.Import, ast.ImportFrom)


def unexplained_imports(source: str) -> list[int]:
    """Line numbers of the function-level imports in ``source`` that give no reason."""
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string
    lines = source.splitlines()

    def explained(node: ast.stmt, siblings: list[ast.stmt]) -> bool:
        if any(REASON.search(comments.get(n, "")) for n in range(node.lineno, node.end_lineno + 1)):
            return True
        # the head of a run of imports carries the comment for the whole run
        head = siblings.index(node)
        while (
            head
            and isinstance(siblings[head - 1], IMPORTS)
            and siblings[head - 1].end_lineno == (siblings[head].lineno - 1)
        ):
            head -= 1
        line = siblings[head].lineno - 1
        while line >= 1 and lines[line - 1].strip().startswith("#"):
            if REASON.search(lines[line - 1]):
                return True
            line -= 1
        return False

    found: list[int] = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            siblings = getattr(node, field, None)
            if not isinstance(siblings, list):
                continue
            for child in siblings:
                if in_function and isinstance(child, IMPORTS) and not explained(child, siblings):
                    found.append(child.lineno)
                walk(child, in_function or isinstance(child, FUNCTIONS))

    walk(ast.parse(source), False)
    return found


def app_modules() -> list[Path]:
    return [
        path
        for app in APPS
        for path in sorted((ROOT / app).rglob("*.py"))
        if "migrations" not in path.relative_to(ROOT).parts
    ]


def test_every_function_level_import_in_the_apps_says_why():
    problems = [
        f"{path.relative_to(ROOT)}:{line}: {path.read_text().splitlines()[line - 1].strip()}"
        for path in app_modules()
        for line in unexplained_imports(path.read_text())
    ]
    assert not problems, (
        "Move these imports to the top of their module, or say why they must wait with a comment "
        "(# cycle: / # optional: / # heavy: / # app loading: / # lazy: ...):\n" + "\n".join(problems)
    )


EXAMPLES = {
    "bare": ("def f():\n    import json\n    return json\n", [2]),
    "trailing reason": ("def f():\n    import redis  # optional: the redis extra\n", []),
    "reason above": ("def f():\n    # cycle: runtime.x imports this module\n    from runtime import x\n", []),
    "a group under one reason": (
        "def f():\n    # app loading: models\n    from a import b\n    from c import d\n\n    from e import g\n",
        [6],
    ),
    "a comment without a reason": ("def f():\n    # needed here\n    import json\n", [3]),
    "nested in a branch of a method": (
        "class A:\n    def f(self):\n        if x:\n            try:\n                import y\n            except ImportError:\n"
        "                pass\n",
        [5],
    ),
    "module level is not checked": (
        "import json\ntry:\n    import redis\nexcept ImportError:\n    redis = None\n",
        [],
    ),
}


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_check_finds_unexplained_imports(name):
    source, expected = EXAMPLES[name]
    assert unexplained_imports(source) == expected


def test_the_agent_authoring_modules_import_before_django_setup():
    """Agents' modules and apps modules import these before the app registry is ready (the reason
    some of their imports wait inside functions): they must not reach the models at import time."""
    modules = "runtime.conf, runtime.interfaces, runtime.registry, runtime.llm, runtime.tools, rag.access"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run(
        [sys.executable, "-c", f"import {modules}"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
