"""The `shequ siting solve` contract (used by outside checks): one JSON object on stdout; bad input →
a message on stderr and exit status 1 (the one status of domain errors in the CLI)."""

import json
import subprocess
import sys

import pytest

KEYS = {"model", "sites", "objective", "covered_weight", "covered_share", "gap", "seconds"}


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "gis_api.cli", "siting", "solve", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture
def instance(tmp_path):
    # two clusters 1 km apart; weights make the east one heavier
    (tmp_path / "d.csv").write_text("id,x,y,weight\na,0,0,1\nb,100,0,2\nc,1000,0,5\nd,1100,0,1\n")
    (tmp_path / "s.csv").write_text("id,x,y\ns1,50,0\ns2,1050,0\ns3,500,0\n")
    return tmp_path


def test_mclp_json(instance):
    p = _run("--model", "mclp", "--demand", "d.csv", "--sites", "s.csv", "--radius", "100", "--p", "1", "--json",
             cwd=instance)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)  # exactly one JSON document
    assert set(out) == KEYS
    assert out["model"] == "mclp" and out["sites"] == ["s2"]
    assert out["objective"] == 6 and out["covered_weight"] == 6
    assert out["covered_share"] == pytest.approx(6 / 9, abs=1e-6)
    assert out["gap"] == 0


def test_lscp_and_fixed(instance):
    p = _run("--model", "lscp", "--demand", "d.csv", "--sites", "s.csv", "--radius", "100", "--json", cwd=instance)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["sites"] == ["s1", "s2"]
    p = _run("--model", "mclp", "--demand", "d.csv", "--sites", "s.csv", "--radius", "100", "--p", "2",
             "--fixed", "s3", "--json", cwd=instance)
    out = json.loads(p.stdout)
    assert "s3" in out["sites"] and out["objective"] == 6  # s3 covers nothing, the second site goes east


def test_pmedian_json(instance):
    p = _run("--model", "pmedian", "--demand", "d.csv", "--sites", "s.csv", "--radius", "2000", "--p", "2",
             "--json", cwd=instance)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["sites"] == ["s1", "s2"] and out["objective"] == pytest.approx(50 * 1 + 50 * 2 + 50 * 5 + 50 * 1)


def test_integer_ids_stay_integers(tmp_path):
    (tmp_path / "d.csv").write_text("id,x,y\n1,0,0\n2,10,0\n")
    (tmp_path / "s.csv").write_text("id,x,y\n7,5,0\n")
    p = _run("--model", "lscp", "--demand", "d.csv", "--sites", "s.csv", "--radius", "10", "--json", cwd=tmp_path)
    assert json.loads(p.stdout)["sites"] == [7]


@pytest.mark.parametrize("case,args,files,needle", [
    ("empty demand", ["--model", "lscp"], {"d.csv": "id,x,y\n"}, "为空"),
    ("radius 0", ["--model", "lscp", "--radius", "0"], {}, "radius"),
    ("negative radius", ["--model", "lscp", "--radius", "-5"], {}, "radius"),
    ("p > sites", ["--model", "mclp", "--p", "9"], {}, "p larger"),
    ("missing p", ["--model", "mclp"], {}, "--p"),
    ("missing column", ["--model", "lscp"], {"d.csv": "id,x\na,1\n"}, "缺少列"),
    ("lon/lat", ["--model", "lscp"], {"d.csv": "id,x,y\na,121.4903,31.2301\nb,121.4911,31.2322\n"}, "经纬度"),
    ("unknown model", ["--model", "foo"], {}, "lscp"),
    ("unknown fixed id", ["--model", "lscp", "--fixed", "zz"], {}, "fixed"),
    ("not a number", ["--model", "lscp"], {"d.csv": "id,x,y\na,1,abc\n"}, "数值无效"),
])
def test_bad_input_exits_non_zero_with_a_message(instance, case, args, files, needle):
    for name, text in files.items():
        (instance / name).write_text(text)
    base = {"--demand": "d.csv", "--sites": "s.csv", "--radius": "100"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    argv = [x for kv in base.items() for x in kv] + ["--json"]
    p = _run(*argv, cwd=instance)
    assert p.returncode == 1, case  # a domain error: the one CLI exit status
    assert p.stdout.strip() == ""
    assert needle in p.stderr, p.stderr


def test_sites_outside_the_network(engine, tmp_path):
    """Walking distance over the demo roads (EPSG:32651 metres): a site 20 km away is rejected."""
    (tmp_path / "d.csv").write_text("id,x,y\na,355350,3456750\n")
    (tmp_path / "s.csv").write_text("id,x,y\nfar,380000,3470000\n")
    p = _run("--model", "lscp", "--demand", "d.csv", "--sites", "s.csv", "--radius", "300", "--distance", "walk",
             "--json", cwd=tmp_path)
    assert p.returncode == 1
    assert "outside the network" in p.stderr and "far" in p.stderr
