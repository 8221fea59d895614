"""What the grids met in a 10⁶-address synthetic city (issue 14, docs/scaling.md section 6): a community whose
geometry makes GEOS fail is reported as failed and the others are built; an invalid part no longer breaks
the union the validator takes; `shequ grid boundaries --extent` refuses an unknown extent before writing."""

from __future__ import annotations

import pytest
import shapely
from shapely.geometry import Polygon, box
from sqlalchemy import text

from grid_builder import service
from grid_builder.build import BuildConfig
from grid_builder.errors import InvalidGridInput
from grid_builder.geom import safe_union


def test_build_all_reports_a_geometry_failure_and_goes_on(engine, monkeypatch):
    with engine.connect() as conn:
        community = conn.execute(text("SELECT code FROM admin_unit WHERE level = 'community' AND valid_to IS NULL "
                                      "ORDER BY code LIMIT 1")).scalar()
    if community is None:  # no community in this session's database yet: one made up serves as well
        community = "310101999001"
    real = service.build_community
    asked: list[str] = []

    def build(engine_, code, cfg):
        asked.append(code)
        if code == community:
            raise shapely.errors.GEOSException("TopologyException: unable to assign free hole to a shell")
        return real(engine_, code, cfg)

    monkeypatch.setattr(service, "build_community", build)
    reports = service.build_all(engine, BuildConfig(), codes=[community, "310101999999"])
    assert asked == [community, "310101999999"]  # the second was still asked after the first failed
    assert [r.community_code for r in reports] == [community, "310101999999"]
    assert all("failed" in r.flags and not r.written for r in reports)
    assert "unable to assign free hole" in reports[0].messages[0]
    assert "310101999999" in reports[1].messages[0]  # the unknown community: its GridNotFound, reported


def test_safe_union_repairs_an_invalid_part():
    # a bow-tie (self-intersecting ring) beside a valid square: the union of the repaired parts covers both
    # lobes of the bow-tie and the square
    bowtie = Polygon([(0, 0), (10, 10), (10, 0), (0, 10), (0, 0)])
    assert not bowtie.is_valid
    square = box(20, 0, 30, 10)
    union = safe_union([bowtie, square])
    assert union.is_valid
    assert union.area == pytest.approx(50 + 100, abs=0.01)
    assert union.contains(shapely.Point(25, 5)) and union.contains(shapely.Point(1, 5))


def test_boundaries_refuse_an_unknown_extent_before_writing(engine):
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM admin_unit")).scalar()
    with pytest.raises(InvalidGridInput, match="extent"):
        service.derive_boundaries(engine, extent="province")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM admin_unit")).scalar() == before


def test_safe_union_of_the_parts_that_failed_at_10e6():
    """The children of one community of the 10⁶-address synthetic city (seed 1, `--extent buildings`, metres)
    whose union failed plain ("side location conflict") and snapped ("unable to assign free hole to a
    shell"), which stopped `shequ grid build --all` there: now a valid union over the repaired parts."""
    from pathlib import Path

    lines = (Path(__file__).parent / "data" / "union_fails_10e6_synthetic.wkb.txt").read_text().split()
    parts = [shapely.from_wkb(h) for h in lines]
    for grid_size in (None, 0.001):
        with pytest.raises(shapely.errors.GEOSException):
            shapely.union_all(parts, grid_size=grid_size)
    union = safe_union(parts)
    assert union.is_valid and not union.is_empty
    repaired = [shapely.make_valid(p) for p in parts]
    assert union.area == pytest.approx(shapely.union_all(repaired, grid_size=0.001).area, rel=1e-9)
    for part in repaired:  # every repaired part lies in the union (to the 1 mm snapping)
        assert union.buffer(0.01).intersection(part).area == pytest.approx(part.area, rel=1e-6)
