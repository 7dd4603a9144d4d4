"""Run one benchmark module and save what it produced: ``python -m bench._one <module> <result.json>``.

The harness (``python -m bench``) runs each module in its own process, so a
module may configure Django, environment variables and databases as it needs,
and a crash or hang in one module cannot take the others down.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import runpy
import sys
import traceback


class _Tee(io.TextIOBase):
    """Shows output live and keeps a copy for the report."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.copy = io.StringIO()

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.stream.flush()
        return self.copy.write(text)

    def flush(self) -> None:
        self.stream.flush()


def run(name: str) -> dict:
    tee = _Tee(sys.stdout)
    result: dict = {"module": name, "kind": "printed", "value": None}
    with contextlib.redirect_stdout(tee):
        try:
            module = importlib.import_module(f"bench.{name}")
            main = getattr(module, "main", None)
            if callable(main):
                value = main()
                if isinstance(value, list) and all(isinstance(row, dict) for row in value):
                    result.update(kind="rows", value=value)
                elif isinstance(value, str):
                    result.update(kind="text", value=value)
            else:  # a script that prints its table when run
                runpy.run_module(f"bench.{name}", run_name="__main__")
        except BaseException as exc:  # noqa: BLE001 - reported, never swallowed silently
            result.update(
                kind="error", value=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()
            )
    result["printed"] = tee.copy.getvalue()
    return result


def main() -> int:
    name, out = sys.argv[1], sys.argv[2]
    result = run(name)
    with open(out, "w") as handle:
        json.dump(result, handle, default=str)
    if result["kind"] == "error":
        print(result["traceback"], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
