"""Run a parser in a child process with a time limit and a memory limit.

A damaged or hostile file can make a parser loop for ever or allocate without end; in the
worker's own process that would hang or kill the worker and every run it holds. Here the
parser runs in a child forked from a small fork server (``multiprocessing``'s ``forkserver``
start method, with the parsing libraries imported once in the server), under
``RLIMIT_AS`` (address space) and a wall-clock deadline. What comes back is the parser's
sections, its own readable ``ExtractionError``, or an ``ExtractionError`` saying the file took
too long, needed too much memory or crashed the parser. Only that document fails.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import resource
import tempfile
import threading
from collections.abc import Callable
from typing import IO, Any

from django.conf import settings

from rag.extract import ExtractionError, Section, extract

# Imported once in the fork server, so each child starts with them loaded (about 10 ms a child
# instead of a fresh interpreter's few hundred).
_PRELOAD = ["rag.extract", "pypdf", "docx", "openpyxl", "pptx", "bs4"]
# The child's exit code when even reporting ran out of memory.
_EXIT_MEMORY = 75
_context_lock = threading.Lock()
_context: Any = None


def _mp_context() -> Any:
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(_PRELOAD)
            _context = context
        return _context


def _child(conn: Any, path: str, kind: str, name: str, limits: dict[str, int]) -> None:
    """In the child: limit memory, configure the settings the parsers read, parse, report."""
    memory = limits.pop("memory_bytes")
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    if not settings.configured:
        settings.configure(**limits)

    # The outcome is sent after the except blocks end: by then the failed parse's frames (and
    # whatever they allocated) are released, so even a MemoryError can still be reported.
    try:
        outcome = ("ok", extract(kind=kind, name=name, open_file=lambda: open(path, "rb")))  # noqa: SIM115
    except ExtractionError as exc:
        outcome = ("refused", str(exc))
    except MemoryError:
        outcome = ("memory", "")
    except Exception as exc:  # a parser bug: the document fails, with the kind of error
        outcome = ("crashed", type(exc).__name__)
    if outcome[0] == "memory":
        gc.collect()  # a parse tree with reference cycles is only freed by the collector
    try:
        conn.send(outcome)
    except MemoryError:
        os._exit(_EXIT_MEMORY)
    conn.close()


def extract_contained(
    *, kind: str, name: str, open_file: Callable[[], IO[bytes]], timeout: float | None = None
) -> list[Section]:
    """``rag.extract.extract`` in a child process, within ``timeout`` (``RAG_PARSE_TIMEOUT``)
    seconds and ``RAG_PARSE_MEMORY_MB`` of address space."""
    timeout = settings.RAG_PARSE_TIMEOUT if timeout is None else timeout
    memory_mb = settings.RAG_PARSE_MEMORY_MB
    limits = {
        "RAG_MAX_PAGES": settings.RAG_MAX_PAGES,
        "RAG_MAX_UNZIPPED_BYTES": settings.RAG_MAX_UNZIPPED_BYTES,
        "memory_bytes": memory_mb * 1024 * 1024,
    }
    # The child reads a local copy: the stored file may live in S3, and a path is all it needs.
    with tempfile.NamedTemporaryFile(prefix="rag-", suffix=f".{kind}") as copy:
        with open_file() as source:
            while piece := source.read(1024 * 1024):
                copy.write(piece)
        copy.flush()
        context = _mp_context()
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_child, args=(sender, copy.name, kind, name, limits), daemon=True)
        try:
            process.start()
        finally:  # (a process limit makes start() raise: the pipe is closed either way)
            sender.close()
            if process.pid is None:
                receiver.close()
        try:
            outcome = receiver.recv() if receiver.poll(timeout) else ("timeout", "")
        except EOFError:  # the child died without a word: killed by the memory limit or a signal
            outcome = ("died", "")
        finally:
            receiver.close()
            if process.is_alive():
                process.kill()
            process.join(5)
    status, value = outcome
    if status == "ok":
        return value
    if status == "refused":
        raise ExtractionError(value)
    if status == "timeout":
        raise ExtractionError(
            f"{name}: reading the file took longer than {timeout:g} seconds, so it was stopped "
            "(a damaged or unusually complex file?). Split it or save it again from its program."
        )
    if status == "memory" or (status == "died" and process.exitcode == _EXIT_MEMORY):
        raise ExtractionError(
            f"{name}: reading the file needed more than {memory_mb} MB of memory, so it was stopped "
            "(a damaged or unusually complex file?). Split it or save it again from its program."
        )
    if status == "died":
        raise ExtractionError(
            f"{name}: the {kind} parser stopped without an answer (exit code {process.exitcode}); "
            "the file may be damaged. Save it again from its program, or split it."
        )
    raise ExtractionError(f"{name}: the {kind} parser failed on this file ({value or 'no answer'}).")
