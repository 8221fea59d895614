"""`shequ address build` and `shequ geocode in.csv --column 地址 -o out.csv` as a user runs them."""

import csv
import os
import subprocess
import sys


def _shequ(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gis_api.cli", *args], capture_output=True, text=True,
                          env={**os.environ}, cwd=cwd, timeout=300)


def test_address_build_cli_is_idempotent(registry):
    proc = _shequ("address", "build")
    assert proc.returncode == 0, proc.stderr
    assert "未变 unchanged" in proc.stdout
    created = [line for line in proc.stdout.splitlines() if line.startswith("新增 created")]
    assert created and created[0].split()[-1] == "0"


def test_geocode_csv(tmp_path, registry):
    src = tmp_path / "in.csv"
    with open(src, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(["编号", "地址"])
        w.writerow(["1", "上海市浦东新区世纪大道1号"])
        w.writerow(["2", "黄浦区 九江路"])
        w.writerow(["3", "完全不存在的地方"])
    out = tmp_path / "out.csv"
    proc = _shequ("geocode", str(src), "--column", "地址", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    assert [r["编号"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["level"] == "house_number" and rows[0]["formatted"].endswith("世纪大道1号")
    assert 121.4 < float(rows[0]["lon"]) < 121.6
    assert rows[1]["level"] == "road"
    assert rows[2]["address_code"] == ""
    bad = _shequ("geocode", str(src), "--column", "没有这列", "-o", str(out))
    assert bad.returncode != 0 and "column" in bad.stderr
