"""`shequ parse`: Chinese address text → labelled components (address_registry.parsing).

Contract (kept stable for outside checks): ``shequ parse --jsonl < in.txt > out.jsonl`` reads one address
per line and writes one JSON object per line, ``{"text": …, "components": [{"label", "text", "start",
"end"}, …]}``, offsets in characters into the input line, end exclusive.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

import typer


def _lines(stream: TextIO):
    for line in stream:
        yield line.rstrip("\r\n")


def run_parse(inp: TextIO, out: TextIO, jsonl: bool, batch: int = 2000) -> int:
    """Parse every line of ``inp`` and write results to ``out``; returns the number of lines."""
    from address_registry.parsing import parse_many

    n = 0
    buf: list[str] = []

    def flush() -> None:
        results = parse_many(buf)
        if jsonl:
            out.write(
                "".join(
                    json.dumps(
                        {
                            "text": text,
                            "components": [
                                {"label": c.label, "text": c.text, "start": c.start, "end": c.end}
                                for c in comps
                            ],
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                    for text, comps in zip(buf, results, strict=True)
                )
            )
        else:
            for text, comps in zip(buf, results, strict=True):
                _print_table(out, text, comps)
        buf.clear()

    for line in _lines(inp):
        buf.append(line)
        n += 1
        if len(buf) >= batch:
            flush()
    if buf:
        flush()
    out.flush()
    return n


def _print_table(out: TextIO, text: str, comps) -> None:
    out.write(f"地址 {text}\n")
    if not comps:
        out.write("  （无成分 no components）\n\n")
        return
    out.write(f"  {'标签 label':<14}{'起止 span':<12}文本 text\n")
    for c in comps:
        out.write(f"  {c.label:<14}{f'{c.start}-{c.end}':<12}{c.text}\n")
    out.write("\n")


def parse_command(
    address: list[str] = typer.Argument(
        None, help="要解析的地址；省略时从标准输入逐行读取 addresses (default: stdin lines)"
    ),
    jsonl: bool = typer.Option(
        False, "--jsonl", help="每行输出一个 JSON 对象 one JSON object per input line"
    ),
) -> None:
    """解析中文地址为带标签的成分 parse Chinese addresses into labelled components.

    Labels: prov, city, district, town, community, road, roadno, poi, subpoi, houseno, cellno, floorno,
    roomno, … Offsets are characters into the input line, end exclusive.
    Example: shequ parse --jsonl < in.txt > out.jsonl
    """
    # UTF-8 whatever the locale; split input on "\n" only (a stray "\r" inside a line stays in it)
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(encoding="utf-8", errors="replace", newline="\n")
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8")
    if address:
        import io

        run_parse(io.StringIO("\n".join(address) + "\n"), sys.stdout, jsonl)
    else:
        run_parse(sys.stdin, sys.stdout, jsonl)


def register(app: typer.Typer) -> None:
    """Add `shequ parse` to the CLI."""
    app.command("parse")(parse_command)
