"""The benchmark harness: which modules run, in which order, and what lands in the report.

The benchmarks themselves are never run here (they are timed, and timing has no place in the
test-suite); these tests cover the harness that ``make bench`` relies on.
"""

from __future__ import annotations

import re
import sys
import textwrap

import pytest

import bench
from bench import __main__ as harness
from bench import _one
from bench.common import markdown_table, url_for


@pytest.fixture
def bench_dir(tmp_path, monkeypatch):
    """A bench folder of our own, importable as ``bench.<name>``."""
    monkeypatch.setattr(harness, "BENCH_DIR", tmp_path)
    monkeypatch.setattr(bench, "__path__", [str(tmp_path), *bench.__path__])

    def write(name: str, source: str) -> None:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        sys.modules.pop(f"bench.{name}", None)

    yield write
    for path in tmp_path.glob("*.py"):
        sys.modules.pop(f"bench.{path.stem}", None)


def test_engine_first_then_sse_llm_builder_then_the_rest(bench_dir):
    for name in ["zeta_misc", "builder_pages", "llm_ttft", "sse_idle", "sse_fanout", "engine_rescue",
                 "engine_throughput", "alpha_misc"]:  # fmt: skip
        bench_dir(name, "def main():\n    return []\n")

    assert harness.discover() == [
        "engine_throughput", "engine_rescue", "sse_fanout", "sse_idle", "llm_ttft", "builder_pages",
        "alpha_misc", "zeta_misc",
    ]  # fmt: skip


def test_helpers_and_modules_without_an_entry_point_are_not_run(bench_dir):
    bench_dir("_sse", "def main():\n    return []\n")
    bench_dir("common", "def main():\n    return []\n")
    bench_dir("agents", "def main():\n    return []\n")
    bench_dir("sse_helpers", "X = 1\n")
    bench_dir("sse_script", 'if __name__ == "__main__":\n    print("| a |")\n')

    assert harness.discover() == ["sse_script"]


def test_rows_become_a_table_in_the_report(bench_dir, tmp_path, monkeypatch):
    bench_dir(
        "engine_fake",
        '''
        """Fake engine benchmark."""
        def main():
            print("progress line")
            return [{"system": "engine", "runs/s": 512.25}, {"system": "procrastinate", "runs/s": 3.5}]
        ''',
    )
    result = _one.run("engine_fake")
    assert result["kind"] == "rows"
    assert "progress line" in result["printed"]

    report = tmp_path / "bench-report.md"
    monkeypatch.setattr(harness, "REPORT", report)
    result.update(seconds=1.0, load_before="1.0", load_after="1.0")
    harness.write_report({"date": "2026-01-01 00:00 UTC"}, [("engine_fake", result)])
    text = report.read_text()
    assert "## engine_fake" in text
    assert "Fake engine benchmark." in text
    assert "| engine | 512.2 |" in text  # the table, figures rounded for reading
    assert "- date: 2026-01-01 00:00 UTC" in text


def test_a_module_that_only_prints_is_reported_verbatim(bench_dir):
    bench_dir("sse_printer", 'def main():\n    print("| p50 | 3 ms |")\n')
    result = _one.run("sse_printer")
    assert result["kind"] == "printed"
    assert harness.render(result) == "```text\n| p50 | 3 ms |\n```"


def test_a_failing_module_is_reported_not_fatal(bench_dir):
    bench_dir("llm_broken", 'def main():\n    raise RuntimeError("no server on 127.0.0.1:9")\n')
    result = _one.run("llm_broken")
    assert result["kind"] == "error"
    assert harness.render(result) == "FAILED: RuntimeError: no server on 127.0.0.1:9"


def test_a_slow_module_gets_the_time_it_asks_for(bench_dir, monkeypatch):
    bench_dir("rag_slow", "TIME_LIMIT = 2400  # seconds\ndef main():\n    return []\n")
    bench_dir("sse_quick", "def main():\n    return []\n")
    limits = {}

    def run_module(name, timeout):
        limits[name] = timeout
        return {"kind": "rows", "rows": [], "seconds": 0.0}

    monkeypatch.setattr(harness, "run_module", run_module)
    monkeypatch.setattr(harness, "write_report", lambda info, results: None)
    monkeypatch.setenv("BENCH_MODULE_TIMEOUT", "300")
    harness.main(["rag_slow", "sse_quick"])
    assert limits == {"rag_slow": 2400.0, "sse_quick": 300.0}


def test_unknown_module_names_are_refused_with_the_list(bench_dir, capsys):
    bench_dir("engine_fake", "def main():\n    return []\n")
    assert harness.main(["engine_nope"]) == 2
    assert "Unknown benchmark(s): engine_nope. Available: engine_fake" in capsys.readouterr().err


def test_markdown_table_takes_every_column_once():
    table = markdown_table([{"a": 1, "b": "x|y"}, {"a": 2, "c": 1234.5}])
    assert table.splitlines() == ["| a | b | c |", "|---|---|---|", "| 1 | x\\|y |  |", "| 2 |  | 1,234.5 |"]


def test_url_for_keeps_server_and_options():
    url = "postgresql://postgres:@/agents?host=/work/.data/pg"
    assert url_for(url, "bench_42") == "postgresql://postgres:@/bench_42?host=/work/.data/pg"


def test_every_benchmark_module_imports():
    """``make bench`` imports each module in its own process; a renamed helper (``wait_for`` became
    ``wait_until``) broke two of them without any test noticing."""
    import importlib
    import tomllib
    from pathlib import Path

    root = Path(bench.__file__).parent
    pyproject = tomllib.loads((root.parent / "pyproject.toml").read_text())
    # packages of the `bench` extra, which `make bench` installs and `make test` does not
    extra = {
        re.split(r"[<>=\[ ]", spec, maxsplit=1)[0].replace("-", "_")
        for spec in pyproject["project"]["optional-dependencies"]["bench"]
    }
    names = sorted(p.stem for p in root.glob("*.py") if not p.stem.startswith("_"))
    for name in names:
        try:
            importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in extra:
                raise
