"""``python -m bench`` (what ``make bench`` runs): every benchmark, one table each, and bench-report.md.

Usage::

    python -m bench                         # all benchmark modules, in a fixed order
    python -m bench engine_throughput ...   # only these (module names, without .py)
    python -m bench --list                  # what would run

A benchmark module is any ``bench/<name>.py`` (not starting with ``_``) that defines
``main()`` returning a list of dicts (one table row each) or a string, or that
prints its table when run as a script. Order: the engine's benchmarks, then
``sse_*``, ``llm_*``, ``builder_*``, then any other, alphabetically within a group.
Each module runs in its own process with a time limit (``BENCH_MODULE_TIMEOUT``,
seconds, default 300; a module that needs longer says so with a top-level
``TIME_LIMIT = <seconds>``, and the larger of the two applies); bench-report.md is rewritten after every module, so it
holds the figures so far even if a later module fails.
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import PROJECT_ROOT, PYTHON, markdown_table

BENCH_DIR = Path(__file__).resolve().parent
REPORT = PROJECT_ROOT / "bench-report.md"
FIRST = ["engine_throughput", "engine_rescue"]
GROUPS = ["engine_", "sse_", "llm_", "builder_"]
NOT_BENCHMARKS = {"common", "agents", "procrastinate_app"}
_RUNNABLE = re.compile(r"^(def main\(|if __name__ == [\"']__main__[\"'])", re.MULTILINE)
_TIME_LIMIT = re.compile(r"^TIME_LIMIT = (\d+)", re.MULTILINE)


def discover() -> list[str]:
    names = []
    for path in BENCH_DIR.glob("*.py"):
        name = path.stem
        if name.startswith("_") or name in NOT_BENCHMARKS:
            continue
        if _RUNNABLE.search(path.read_text(errors="replace")):
            names.append(name)

    def order(name: str) -> tuple[int, int, str]:
        if name in FIRST:
            return (0, FIRST.index(name), name)
        group = next((i for i, prefix in enumerate(GROUPS) if name.startswith(prefix)), len(GROUPS))
        return (1 + group, 0, name)

    return sorted(names, key=order)


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": f"{cpu} ({os.cpu_count()} cores)",
        "python": platform.python_version(),
    }
    try:
        import psutil

        info["memory"] = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    except ImportError:
        pass
    try:
        import psycopg

        from bench.common import server_url

        with psycopg.connect(server_url(), connect_timeout=10) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:  # the report still gets written
        info["postgresql"] = f"unknown ({type(exc).__name__})"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        info["commit"] = commit or "unknown"
    except (OSError, subprocess.SubprocessError):
        info["commit"] = "unknown"
    return info


def load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def run_module(name: str, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "result.json"
        started = time.monotonic()
        load_before = load()
        # A new session, so a module that overruns is stopped with everything it started.
        proc = subprocess.Popen(
            [PYTHON, "-m", "bench._one", name, str(out)],
            cwd=PROJECT_ROOT,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            result = {
                "kind": "error",
                "value": f"stopped after the {timeout:.0f} s limit (BENCH_MODULE_TIMEOUT)",
            }
        else:
            if out.exists():
                result = json.loads(out.read_text())
            else:
                result = {
                    "kind": "error",
                    "value": f"the module's process exited with code {proc.returncode}",
                }
        result["seconds"] = time.monotonic() - started
        result["load_before"] = load_before
        result["load_after"] = load()
        return result


def _stop_group(proc: subprocess.Popen) -> None:
    import signal

    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)  # the group of the session we created for this module
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def render(result: dict) -> str:
    kind, value = result.get("kind"), result.get("value")
    if kind == "rows":
        return markdown_table(value)
    if kind == "text":
        return str(value).rstrip()
    if kind == "error":
        return f"FAILED: {value}"
    printed = (result.get("printed") or "").rstrip()
    return f"```text\n{printed}\n```" if printed else "(the module printed nothing)"


def _summary(name: str) -> str:
    text = (BENCH_DIR / f"{name}.py").read_text(errors="replace")
    match = re.match(r'\s*(?:#.*\n\s*)*(?:"""|\'\'\')(.*?)(?:\n|"""|\'\'\')', text)
    return match.group(1).strip() if match else ""


def write_report(info: dict[str, str], results: list[tuple[str, dict]]) -> None:
    lines = ["# Benchmark report", "", "Produced by `make bench` (`python -m bench`).", ""]
    lines += [f"- {key}: {value}" for key, value in info.items()]
    for name, result in results:
        lines += ["", f"## {name}", ""]
        summary = _summary(name)
        if summary:
            lines += [summary, ""]
        lines += [
            render(result),
            "",
            f"_{result['seconds']:.0f} s; load average before {result['load_before']}, after {result['load_after']}._",
        ]
    REPORT.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    available = discover()
    if "--list" in argv:
        print("\n".join(available))
        return 0
    wanted = [arg.removesuffix(".py") for arg in argv if not arg.startswith("-")]
    unknown = [name for name in wanted if name not in available]
    if unknown:
        print(
            f"Unknown benchmark(s): {', '.join(unknown)}. Available: {', '.join(available)}", file=sys.stderr
        )
        return 2
    names = wanted or available
    timeout = float(os.environ.get("BENCH_MODULE_TIMEOUT", "300"))
    try:
        from bench.common import drop_stale_databases, server_url

        dropped = drop_stale_databases(server_url())
        if dropped:
            print(f"Dropped databases left by earlier, interrupted benchmark runs: {', '.join(dropped)}")
    except Exception as exc:
        print(f"Could not reach PostgreSQL before benchmarking: {exc}", file=sys.stderr)
    info = machine()
    print(" ".join(f"{k}={v}" for k, v in info.items()))
    results: list[tuple[str, dict]] = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        result = run_module(name, max(timeout, time_limit(name)))
        results.append((name, result))
        print(f"\n{render(result)}\n({result['seconds']:.0f} s)", flush=True)
        write_report(info, results)
    failed = [name for name, result in results if result.get("kind") == "error"]
    print(
        f"\nWrote {REPORT.relative_to(PROJECT_ROOT)}" + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


def time_limit(name: str) -> float:
    """The module's own ``TIME_LIMIT`` (read from its source, so it is not imported here), or 0."""
    found = _TIME_LIMIT.search((BENCH_DIR / f"{name}.py").read_text())
    return float(found.group(1)) if found else 0.0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
