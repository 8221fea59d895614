"""`shequ tiles seed|stats|clear` and `shequ map layers` on the real demo database."""

from typer.testing import CliRunner

from tiles.tms import tile_for_lonlat


def test_seed_then_served_from_cache_then_clear(client, pg_url):
    from gis_api.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["tiles", "clear"]).exit_code == 0
    r = runner.invoke(app, ["tiles", "seed", "--layers", "poi,basemap", "--zooms", "15"])
    assert r.exit_code == 0, r.output
    stats = runner.invoke(app, ["tiles", "stats"]).output
    assert "poi@" in stats and "basemap@" in stats
    t = tile_for_lonlat(121.4905, 31.2400, 15)
    assert (
        client.get(f"/collections/poi/tiles/WebMercatorQuad/15/{t.x}/{t.y}").headers["x-tile-cache"] == "hit"
    )
    assert client.get(f"/tiles/basemap/15/{t.x}/{t.y}.mvt").headers["x-tile-cache"] == "hit"
    r = runner.invoke(app, ["tiles", "clear", "--layer", "poi"])
    assert r.exit_code == 0 and "已清除" in r.output
    assert (
        client.get(f"/collections/poi/tiles/WebMercatorQuad/15/{t.x}/{t.y}").headers["x-tile-cache"] == "miss"
    )
    assert client.get(f"/tiles/basemap/15/{t.x}/{t.y}.mvt").headers["x-tile-cache"] == "hit"


def test_cli_bad_input(pg_url):
    from gis_api.cli import app

    runner = CliRunner()
    for args in (
        ["tiles", "seed", "--layers", "nope"],
        ["tiles", "seed", "--zooms", "9-x"],
        ["tiles", "seed", "--bbox", "1,2,3"],
    ):
        r = runner.invoke(app, args)
        assert r.exit_code == 1 and "错误" in r.output, (args, r.output)


def test_map_layers_lists_the_registry(pg_url):
    from gis_api.cli import app

    r = CliRunner().invoke(app, ["map", "layers"])
    assert r.exit_code == 0 and "building" in r.output and "可用" in r.output
