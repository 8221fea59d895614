"""`shequ parse` CLI contract: one JSON object per input line, offsets into the line, end exclusive."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gis_api.commands.parse import run_parse

REPO = Path(__file__).resolve().parents[2]
SHEQU = REPO / ".venv" / "bin" / "shequ"

LINES = [
    "浙江省杭州市西湖区文三路32号3幢2单元501室",
    "",
    "杭州市西湖区文三路３２号　张三 13812345678",
    "文三路三十二号",
    '带"引号"和\\反斜杠的地址 文三路1号',
]


def shequ_cmd() -> list[str]:
    if SHEQU.exists():
        return [str(SHEQU)]
    return [sys.executable, "-m", "gis_api.cli"]


def check_records(records: list[dict]) -> None:
    assert [r["text"] for r in records] == LINES
    assert records[1] == {"text": "", "components": []}
    for r in records:
        assert set(r) == {"text", "components"}
        for c in r["components"]:
            assert set(c) == {"label", "text", "start", "end"}
            assert r["text"][c["start"] : c["end"]] == c["text"]
    first = {c["label"]: c for c in records[0]["components"]}
    assert first["road"] == {"label": "road", "text": "文三路", "start": 9, "end": 12}
    assert first["roomno"]["text"] == "501室"
    third = {c["label"]: c["text"] for c in records[2]["components"]}
    assert third["roadno"] == "３２号"


def test_cli_jsonl_subprocess():
    stdin = ("\n".join(LINES) + "\n").encode("utf-8")
    proc = subprocess.run(
        [*shequ_cmd(), "parse", "--jsonl"], input=stdin, capture_output=True, timeout=120, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode("utf-8")
    assert "\\u" not in out  # ensure_ascii=False: Chinese stays Chinese
    lines = out.splitlines()
    assert len(lines) == len(LINES)
    check_records([json.loads(line) for line in lines])


def test_cli_crlf_and_missing_final_newline():
    stdin = "\r\n".join(LINES).encode("utf-8")
    proc = subprocess.run(
        [*shequ_cmd(), "parse", "--jsonl"], input=stdin, capture_output=True, timeout=120, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr.decode()
    check_records([json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()])


def test_cli_help_and_table():
    proc = subprocess.run([*shequ_cmd(), "parse", "--help"], capture_output=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0 and "--jsonl" in proc.stdout.decode()
    proc = subprocess.run(
        [*shequ_cmd(), "parse"], input=LINES[0].encode(), capture_output=True, timeout=120, cwd=REPO
    )
    assert proc.returncode == 0
    table = proc.stdout.decode()
    assert "road" in table and "文三路" in table and "9-12" in table


@pytest.mark.parametrize("jsonl", [True, False])
def test_run_parse_in_process(jsonl):
    out = io.StringIO()
    n = run_parse(io.StringIO("\n".join(LINES) + "\n"), out, jsonl=jsonl, batch=2)
    assert n == len(LINES)
    if jsonl:
        check_records([json.loads(line) for line in out.getvalue().splitlines()])
    else:
        assert sum(line.startswith("地址 ") for line in out.getvalue().splitlines()) == len(LINES)
