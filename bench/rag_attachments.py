"""Files attached to a chat message: the time to read one in the web request.

Each file goes through ``runtime.attachments.read_attachments`` with rag's reader (type sniffed,
text extracted in a child forked from the parse fork server), as the run API and the playground
do. The peer, measured in the same loop, is the runtime's own in-process reader on the same text
file: the difference is what containment costs a file. Also the cold start: the first file a
process reads starts its fork server (which imports the parsing libraries). No database is used.
"""

from __future__ import annotations

import os
import statistics
import time

from bench.common import server_url, setup_django

ROUNDS = int(os.environ.get("BENCH_ATTACHMENT_ROUNDS", "20"))


def main() -> list[dict]:
    setup_django(server_url())
    from django.core.files.uploadedfile import SimpleUploadedFile

    from runtime import attachments
    from tests.rag import files

    def once(name: str, data: bytes) -> float:
        started = time.perf_counter()
        attachments.read_attachments([SimpleUploadedFile(name, data)])
        return (time.perf_counter() - started) * 1000

    text = b"The boiler is serviced in May.\n" * 200
    samples = {
        "notes.txt, 6 KB (contained)": ("notes.txt", text),
        "lease.pdf, 10 pages": ("lease.pdf", files.pdf_bytes([f"Page {i} of the lease." for i in range(10)])),
        "policy.docx": ("policy.docx", files.docx_bytes()),
        "prices.xlsx": ("prices.xlsx", files.xlsx_bytes()),
    }
    cold = once("first.txt", b"warm up")
    times: dict[str, list[float]] = {label: [] for label in samples}
    times["notes.txt, 6 KB (runtime alone, in process)"] = []
    contained = attachments.file_reader()
    for _ in range(ROUNDS):  # alternating, so a change in load hits every kind alike
        for label, (name, data) in samples.items():
            times[label].append(once(name, data))
        attachments.set_file_reader(None)
        times["notes.txt, 6 KB (runtime alone, in process)"].append(once("notes.txt", text))
        attachments.set_file_reader(contained)
    load = os.getloadavg()[0]
    rows = [
        {
            "file": "first file of a process (starts the fork server)",
            "p50 ms": round(cold),
            "max ms": round(cold),
        }
    ]
    for label, values in times.items():
        rows.append(
            {"file": label, "p50 ms": round(statistics.median(values), 1), "max ms": round(max(values), 1)}
        )
    for row in rows:
        row["load (1 min)"] = f"{load:.1f}"
    return rows


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
