"""Bulk import of people, houses and units on the demo's real addresses (synthetic people): CSV in UTF-8 and
GB18030, .xlsx; per-row report (GB 11643 check, unknown address, duplicates in the file and in the
records, bad dates, number-formatted ID cells); all-or-nothing versus valid-rows-only; jurisdiction per row;
upload limit; audit entry; the CLI. Everything a test writes is removed after it."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from residents import validate as v


def _id(seq: int, born: str = "19910704", region: str = "310104") -> str:
    body = f"{region}{born}{seq:03d}"
    return body + v.id_check_char(body)


def _bad_id(seq: int) -> str:
    good = _id(seq)
    return good[:-1] + ("0" if good[-1] != "0" else "1")


def _credit(seq: int) -> str:
    body = f"91310104MA1K{seq:05d}"
    return body + v.credit_check_char(body)


def _csv(rows: list[list[object]], encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode(encoding)


@pytest.fixture
def cleanup(engine):
    """Remove what the test's imports wrote: ``cleanup(refs)`` registers the report's written refs."""
    refs: list[str] = []
    yield refs.extend
    with engine.begin() as conn:
        for ref in refs:
            kind, _, key = ref.partition(":")
            if kind == "person":
                for table, col in (("person_key_group", "person_id"), ("residence", "person_id"), ("person", "id")):
                    conn.execute(text(f"DELETE FROM {table} WHERE {col} = :k"), {"k": int(key)})
            elif kind == "unit":
                conn.execute(text("DELETE FROM org_unit WHERE id = :k"), {"k": int(key)})
            elif kind == "house":
                conn.execute(text("DELETE FROM house_info WHERE address_code = :k AND source = 'grid' "
                                  "AND change_reason IS DISTINCT FROM 'synthetic demo'"), {"k": key})
                conn.execute(text("UPDATE house_info SET valid_to = NULL WHERE address_code = :k AND row_id = "
                                  "(SELECT max(row_id) FROM house_info WHERE address_code = :k)"), {"k": key})


def _people_of(engine, numbers: list[str]) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM person WHERE id_number = ANY(:n)"), {"n": numbers}).scalar()


def _post(client, data: bytes, kind: str, name: str = "people.csv", headers=None, **params):
    return client.post("/residents/import", params={"kind": kind, **params}, files={"file": (name, data)},
                       headers=headers or {})


def test_people_csv_all_valid(client, engine, demo_addresses, cleanup):
    ids = [_id(1), _id(2), _id(3, born="20150101")]
    data = _csv([["地址编码", "姓名", "证件号码", "电话", "登记状态", "入住日期", "重点人群"],
                 [demo_addresses["room"], "导入甲", ids[0], "13912345678", "常住", "2021-03-01", ""],
                 [demo_addresses["room"], "导入乙", ids[1], "", "流动", "2022/05/06", "独居老人"],
                 [demo_addresses["other_room"], "导入丙", ids[2], "", "户籍", "", "minor；残疾人"]])
    res = _post(client, data, "people")
    assert res.status_code == 201, res.text
    body = res.json()
    cleanup(body["written"])
    assert body["imported"] == 3 and body["errors"] == [] and body["committed"]
    with engine.connect() as conn:
        got = conn.execute(text(
            "SELECT p.name, p.sex, p.birth_date::text, r.address_code, r.from_date::text, "
            "array(SELECT kind FROM person_key_group g WHERE g.person_id = p.id ORDER BY kind) AS groups "
            "FROM person p JOIN residence r ON r.person_id = p.id AND r.to_date IS NULL "
            "WHERE p.id_number = ANY(:n) AND p.valid_to IS NULL ORDER BY p.id_number"), {"n": ids}).all()
        audited = conn.execute(text("SELECT after FROM audit_log WHERE action = 'residents.import' "
                                    "ORDER BY id DESC LIMIT 1")).scalar()
    assert [g[0] for g in got] == ["导入甲", "导入乙", "导入丙"]
    assert got[0][1:5] == ("M", "1991-07-04", demo_addresses["room"], "2021-03-01")
    assert got[1][4] == "2022-05-06" and got[1][5] == ["elderly_alone"]
    assert got[2][5] == ["disabled", "minor"]
    assert audited["imported"] == 3 and audited["kind"] == "people"


BAD_ROWS = [
    ["address_code", "name", "id_number", "birth_date"],
    ["{room}", "好行", _id(11), ""],                       # row 2: valid
    ["{room}", "校验错", _bad_id(12), ""],                  # row 3: GB 11643 check character
    ["31010199999999999", "无地址", _id(13), ""],          # row 4: no such address
    ["{room}", "文件内重复", _id(11), ""],                   # row 5: duplicate of row 2
    ["{room}", "", _id(14), ""],                           # row 6: name missing
    ["{room}", "日期错", _id(15), "2020-13-40"],            # row 7: bad date
    ["{room}", "好行二", _id(16), ""],                      # row 8: valid
]


def _bad_file(demo_addresses) -> bytes:
    return _csv([[c.format(room=demo_addresses["room"]) for c in r] for r in BAD_ROWS])


def test_all_or_nothing_reports_every_bad_row_and_writes_nothing(client, engine, demo_addresses):
    res = _post(client, _bad_file(demo_addresses), "people")
    assert res.status_code == 422, res.text
    detail = res.json()["detail"]
    assert detail["rejected_rows"] == [3, 4, 5, 6, 7] and detail["imported"] == 0 and not detail["committed"]
    by_row = {e["row"]: e for e in detail["errors"]}
    assert by_row[3]["field"] == "id_number" and "校验" in by_row[3]["reason"]
    assert by_row[4]["field"] == "address_code" and "不存在" in by_row[4]["reason"]
    assert by_row[5]["field"] == "id_number" and "第 2 行" in by_row[5]["reason"]
    assert by_row[6]["field"] == "name"
    assert by_row[7]["field"] == "birth_date"
    assert _people_of(engine, [_id(11), _id(16)]) == 0  # nothing half-written


def test_valid_rows_only_writes_the_good_rows(client, engine, demo_addresses, cleanup):
    res = _post(client, _bad_file(demo_addresses), "people", mode="valid")
    assert res.status_code == 201, res.text
    body = res.json()
    cleanup(body["written"])
    assert body["imported"] == 2 and body["rejected_rows"] == [3, 4, 5, 6, 7]
    assert _people_of(engine, [_id(11), _id(16)]) == 2
    # the same file again: both people are already recorded (dedupe by document against the records)
    again = _post(client, _bad_file(demo_addresses), "people", mode="valid")
    assert again.status_code == 200 and again.json()["imported"] == 0
    errs = {e["row"]: e for e in again.json()["errors"]}
    assert errs[2]["field"] == "id_number" and "已登记" in errs[2]["reason"]


def test_dry_run_writes_nothing(client, engine, demo_addresses):
    data = _csv([["address_code", "name", "id_number"], [demo_addresses["room"], "试跑", _id(21)]])
    res = _post(client, data, "people", dry_run="true")
    assert res.status_code == 200 and res.json()["rows"] == 1 and res.json()["imported"] == 0
    assert _people_of(engine, [_id(21)]) == 0


def test_units_gb18030_and_houses_xlsx(client, engine, demo_addresses, cleanup):
    from openpyxl import Workbook

    units = _csv([["地址编码", "单位名称", "统一社会信用代码", "单位类型", "联系人电话", "从业人数"],
                  [demo_addresses["house_number"], "测试导入商行", _credit(1), "个体工商户", "021-63211234", "3"],
                  [demo_addresses["house_number"], "错码公司", _credit(2)[:-1] + "Z", "企业", "", ""],
                  [demo_addresses["house_number"], "人数错", _credit(3), "企业", "", "三"]], encoding="gb18030")
    res = _post(client, units, "units", name="units.csv", mode="valid")
    assert res.status_code == 201, res.text
    cleanup(res.json()["written"])
    assert res.json()["imported"] == 1
    errs = {e["row"]: e["field"] for e in res.json()["errors"]}
    assert errs == {3: "credit_code", 4: "staff_count"}

    wb = Workbook()
    ws = wb.active
    ws.append(["地址编码", "房屋用途", "建筑面积", "租住人数", "租期开始"])
    ws.append([demo_addresses["building"], "出租", 86.5, 2, "2024-01-01"])
    ws.append([demo_addresses["house_number"], "住宿", None, None, None])  # not a use
    buf = io.BytesIO()
    wb.save(buf)
    res = _post(client, buf.getvalue(), "houses", name="houses.xlsx")
    assert res.status_code == 422 and res.json()["detail"]["errors"][0]["field"] == "use"
    res = _post(client, buf.getvalue(), "houses", name="houses.xlsx", mode="valid")
    assert res.status_code == 201, res.text
    cleanup(res.json()["written"])
    with engine.connect() as conn:
        row = conn.execute(text("SELECT use, floor_area, tenant_count FROM house_info WHERE address_code = :c "
                                "AND valid_to IS NULL"), {"c": demo_addresses["building"]}).one()
    assert (row[0], float(row[1]), row[2]) == ("出租", 86.5, 2)


def test_xlsx_number_cells_for_id_numbers_are_refused(client, demo_addresses):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["address_code", "name", "id_number"])
    wb.active.append([demo_addresses["room"], "数字格式", 310104199107040311])
    buf = io.BytesIO()
    wb.save(buf)
    res = _post(client, buf.getvalue(), "people", name="p.xlsx")
    assert res.status_code == 422
    err = res.json()["detail"]["errors"][0]
    assert err["field"] == "id_number" and "文本" in err["reason"]


def test_rows_outside_the_jurisdiction_are_rejected(anon_client, role_headers, demo_addresses, engine, cleanup):
    data = _csv([["address_code", "name", "id_number"],
                 [demo_addresses["house_number"], "辖区内", _id(31)],
                 [demo_addresses["other_house_number"], "辖区外", _id(32)]])
    res = _post(anon_client, data, "people", headers=role_headers["community"], mode="valid")
    assert res.status_code == 201, res.text
    cleanup(res.json()["written"])
    assert res.json()["imported"] == 1
    assert res.json()["errors"] == [{"row": 3, "field": "address_code",
                                     "reason": f"超出管辖范围 address {demo_addresses['other_house_number']} "
                                               "is outside your jurisdiction"}]
    assert _post(anon_client, data, "people", headers=role_headers["planner"]).status_code == 403
    assert _post(anon_client, data, "people").status_code == 401


def test_bad_files_are_clear_4xx(client, demo_addresses):
    res = _post(client, _csv([["address_code", "名字", "id_number"], ["x", "y", "z"]]), "people")
    assert res.status_code == 422 and res.json()["error"] == "import_file" and "名字" in res.json()["message"]
    res = _post(client, _csv([["address_code", "name"]]), "people")
    assert res.status_code == 422 and "没有数据行" in res.json()["message"]
    assert _post(client, b"\xff\xfe\x00garbage\x81", "people").status_code == 422
    assert _post(client, b"PK\x03\x04broken", "people", name="x.xlsx").status_code == 422
    assert _post(client, _csv([["address_code", "name"]]), "pets").status_code == 422
    big = b"address_code,name\n" + b"x" * (5 * 1024 * 1024 + 10)
    assert _post(client, big, "people").status_code == 413


def test_cli_import_with_report(engine, demo_addresses, tmp_path, cleanup):
    from gis_api.cli import app as cli

    path = tmp_path / "people.csv"
    path.write_bytes(_csv([["address_code", "name", "id_number"],
                           [demo_addresses["room"], "命令行", _id(41)],
                           [demo_addresses["room"], "坏号", _bad_id(42)]], encoding="gb18030"))
    report = tmp_path / "rejected.csv"
    res = CliRunner().invoke(cli, ["residents", "import", str(path), "--kind", "people", "--report", str(report)])
    assert res.exit_code == 1 and "nothing written" in res.output
    assert _people_of(engine, [_id(41)]) == 0
    assert "id_number" in report.read_text(encoding="utf-8-sig")
    res = CliRunner().invoke(cli, ["residents", "import", str(path), "--kind", "people", "--mode", "valid"])
    assert res.exit_code == 0, res.output
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT id FROM person WHERE id_number = :n"), {"n": _id(41)}).scalar()
    assert pid is not None
    cleanup([f"person:{pid}"])
