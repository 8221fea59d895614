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
