"""After the import, the usual steps run on the new city: provisional boundaries, the registry build, grids and
H3, tiles of the city's extent (here on the demo clone, alone in its database)."""

from __future__ import annotations

from sqlalchemy import text

from tests.onboarding.conftest import run_cli


def test_import_then_the_usual_steps(city_db_url, city_engine, clone, demo_sources):
    res = run_cli(
        city_db_url,
        [
            "city", "import", "--name", "上海演示复刻", "--district-code", "310100",
            "--layer", f"building={demo_sources['buildings']}", "--mapping", str(demo_sources["mapping"]),
            "--zooms", "14",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    steps = [line for line in res.output.splitlines() if line.startswith("  步骤 step")]
    assert len(steps) == 5 and all(": ok (" in s for s in steps), "\n".join(steps)
    with city_engine.connect() as conn:
        units = conn.execute(
            text("SELECT count(*) FROM admin_unit WHERE source = 'provisional' AND valid_to IS NULL")
        ).scalar_one()
        grids = conn.execute(text("SELECT count(*) FROM grid")).scalar_one()
        registry = conn.execute(
            text("SELECT count(*) FROM standard_address WHERE valid_to IS NULL")
        ).scalar_one()
    assert units > 5 and grids > 20 and registry > 1000, (units, grids, registry)
    print("\n".join(steps))


def _boundaries(path, with_code: bool = True):
    import json

    def feat(code, name, x0, y0, x1, y1):
        props = {"code": code, "name": name} if with_code else {"name": name}
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        return {
            "type": "Feature",
            "properties": props,
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }

    fc = {
        "type": "FeatureCollection",
        "features": [
            feat("310101050", "外滩测试街道", 121.484, 31.233, 121.492, 31.243),
            feat("310101050001", "外滩测试社区", 121.485, 31.234, 121.491, 31.242),
        ],
    }
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    return path


def test_own_boundaries_through_grid_import(city_db_url, city_engine, clone, demo_sources, tmp_path):
    base = ["city", "import", "--name", "上海演示复刻", "--district-code", "310100", "--no-steps",
            "--layer", f"building={demo_sources['buildings']}", "--mapping", str(demo_sources["mapping"])]  # fmt: skip
    bad = run_cli(city_db_url, [*base, "--boundaries", str(_boundaries(tmp_path / "bad.geojson", False))])
    assert bad.exit_code == 1 and "错误 error [" in bad.output
    with city_engine.connect() as conn:
        assert not conn.execute(
            text("SELECT count(*) FROM admin_unit WHERE code LIKE '310101050%'")
        ).scalar_one()
    res = run_cli(city_db_url, [*base, "--boundaries", str(_boundaries(tmp_path / "b.geojson"))])
    assert res.exit_code == 0, res.output
    assert "1 街道 townships, 1 社区 communities" in res.output
    with city_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT code, source FROM admin_unit WHERE code LIKE '310101050%' AND valid_to IS NULL ORDER BY code"
            )
        ).all()
    assert [tuple(r) for r in rows] == [("310101050", "import"), ("310101050001", "import")]
