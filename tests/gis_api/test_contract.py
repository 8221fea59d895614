"""The API contract, tried as an outside client would (issue 15): schemathesis with all its checks, against
the app in-process (ASGI), signed in as an admin, on a copy of the test database (its writes never reach the
other tests). Every operation of the OpenAPI document runs a few examples in `make test` and many under
`make fuzz` (SHEQU_FUZZ=1); the numbers of cases and failures go to docs/reliability.md.
"""

from __future__ import annotations

import json
import os
from collections import Counter

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gis_api.auth import roles as r
from gis_api.backup import backup, restore

#: cases run per operation label, and the domain-rule refusals of schema-valid requests (operation, code)
CASES: Counter[str] = Counter()
#: the stateful phase: scenarios run, calls made per operation label, links followed
STATEFUL: Counter[str] = Counter()
STATEFUL_CALLS: Counter[str] = Counter()
STATEFUL_OK: Counter[str] = Counter()
#: the most calls in one stateful scenario
STEPS = 6
DOMAIN_REFUSALS: Counter[tuple[str, str]] = Counter()


@schemathesis.check
def schema_valid_refused_only_by_a_domain_rule(ctx, response, case):
    """Stands in for schemathesis's ``positive_data_acceptance``: a schema-valid request is never refused by
    request validation (``validation_error``: what the schema allows, the parser accepts) nor with a body
    outside the error table. It may be refused by a domain rule JSON Schema cannot state — a check digit, a
    point outside China, a CQL2 grammar error, two scenarios that must differ — with that rule's own error
    code; those refusals are counted and listed in docs/reliability.md."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code not in (400, 422):
        return None
    try:
        body = response.json()
    except Exception:
        body = {}
    code = body.get("error") if isinstance(body, dict) else None
    if code == "validation_error" and all(
            e.get("type") == "value_error" and isinstance(e.get("input"), dict) for e in body.get("detail") or [{}]):
        code = "cross_field_rule"  # a model validator over several fields (one of two, not both …)
    if case.operation.path == "/p/{code}":  # the scan page answers its refusals as an HTML page
        code = code or "plate_page"
    if not code or code == "validation_error":
        raise AssertionError(f"a schema-valid request was refused by validation: {response.status_code} "
                             f"{response.text[:300]}")
    DOMAIN_REFUSALS[(case.operation.label, code)] += 1
    return None


def _copy_database(url: str, name: str, folder) -> str:
    """A copy of the database at ``url`` named ``name``, through `shequ db backup` / `restore` (a template
    copy would need every other session of the test database closed); its URL."""
    copy = make_url(url).set(database=name).render_as_string(hide_password=False)
    dump = folder / "contract.dump"
    backup(url, dump)
    restore(copy, dump)
    dump.unlink()
    return copy


def _seed(app, headers: dict[str, str], jurisdictions: dict[str, str]) -> None:
    """Real resources in the copy for the stateful phase's links to start from (a list's first item): a grid
    edit draft, a key place, a saved scenario — so submit / approve / rollback, PATCH and the reports run
    on real rows, not only on ids that do not exist."""
    from fastapi.testclient import TestClient
    from sqlalchemy import create_engine as make_engine

    from grid_builder.edit.samples import movable_vertex
    from grid_builder.edit.service import load_layout

    community = jurisdictions["community"]
    engine = make_engine(app.state.engine.url)
    with engine.connect() as conn:
        src, dst, _a, _b = movable_vertex(load_layout(conn, community)[1])
    engine.dispose()
    with TestClient(app, headers=headers) as c:
        for path, body in (
                ("/grid-edits", {"community_code": community, "reason": "契约测试草稿",
                                 "operations": [{"op": "move_vertex", "from": src, "to": dst}]}),
                ("/key-places", {"name": "契约测试养老院", "category": "elderly_care",
                                 "address_code": jurisdictions["address"]}),
                ("/analysis/scenarios", {"name": "契约测试方案", "area_code": community, "facility_type": "幼儿园",
                                         "model": "mclp", "distance": "line", "new_sites": 1})):
            made = c.post(path, json=body)
            assert made.status_code == 201, (path, made.text)


@pytest.fixture(scope="module")
def contract_schema(pg_url, role_headers, jurisdictions, fuzz_cases, tmp_path_factory):
    from gis_api.app import create_app

    url = _copy_database(pg_url, "shequ_contract", tmp_path_factory.mktemp("contract"))
    app = create_app(db_url=url)
    _seed(app, role_headers[r.ADMIN], jurisdictions)
    full = fuzz_cases(False, True)
    examples = fuzz_cases(int(os.environ.get("SHEQU_CONTRACT_EXAMPLES", "3")), 150)
    config = SchemathesisConfig.from_dict({
        # make test: the schema's examples and a few random cases per operation; make fuzz adds the
        # coverage phase (boundary values of every constraint) and 150 random cases per operation
        # the caller signs in with the admin's token (below); generated credentials would only be refused
        "generation": {"max-examples": examples, "with-security-parameters": False},
        # the stateful phase follows the links the document declares (gis_api/openapi_links.py) and only
        # those: schemathesis's own guesses (dependency analysis, Location headers) are turned off
        "phases": {"coverage": {"enabled": full},
                   "stateful": {"max-steps": STEPS, "inference": {"algorithms": []}}},
        "seed": 15,
        # the client waits 30 s (schemathesis's default is 10): the synchronous analyses (siting, isochrones,
        # scenario saves) take 2-5 s on an idle machine and over 10 s on the shared 2 cores at load 10-16, which
        # made the long run and the stateful phase fail on a read timeout; moving them to jobs is the open fix
        # (docs/reliability.md, "Open")
        "request-timeout": 30,
    })
    yield schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    app.state.engine.dispose()
    admin = create_engine(make_url(url).set(drivername="postgresql+psycopg", database="postgres"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('DROP DATABASE IF EXISTS "shequ_contract" WITH (FORCE)'))
    admin.dispose()


schema = schemathesis.pytest.from_fixture("contract_schema")


#: operations left out, with the reason (each one is an open item in docs/reliability.md)
LEFT_OUT = {
    # a synchronous camera-placement MILP bounded by time_limit_s (default 60 s, up to 300 s): longer than
    # any client timeout; it belongs in the jobs of the planner workbench (POST /analysis/jobs)
    ("POST", "/analysis/cameras"),
}


@pytest.mark.fuzz
@schema.exclude(path=[p for _, p in LEFT_OUT], method=[m for m, _ in LEFT_OUT]).parametrize()
def test_contract(case, role_headers):
    CASES[case.operation.label] += 1
    case.call_and_validate(headers=role_headers[r.ADMIN], excluded_checks=[positive_data_acceptance])


@pytest.mark.fuzz
def test_contract_stateful(contract_schema, role_headers, fuzz_cases):
    """schemathesis's stateful phase: scenarios of up to `STEPS` calls, each after the first fed by a link
    of the document from an earlier answer (a listed address's code → its history, split, people …; a
    submitted job → its status, result, cancel; a saved draft → submit, approve …), every check on every
    call, the stateful ones included (a created resource is readable; a deleted one is gone)."""
    headers = role_headers[r.ADMIN]
    base = contract_schema.as_state_machine()

    class Machine(base):  # type: ignore[misc, valid-type]
        def setup(self):
            STATEFUL["scenarios"] += 1

        def get_call_kwargs(self, case):
            return {"headers": headers}

        def after_call(self, response, case):
            super().after_call(response, case)
            STATEFUL_CALLS[case.operation.label] += 1
            if "{" in case.operation.path and response.status_code < 300:
                STATEFUL_OK[case.operation.label] += 1  # an id path answered: a link gave a real id

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, additional_checks=additional_checks,
                                   excluded_checks=[positive_data_acceptance],
                                   transport_kwargs=kwargs or None, recorder=self.recorder)

    assert contract_schema.statistic.transitions.total >= 80  # the links of gis_api/openapi_links.py
    # make test: one derandomized batch of 25 scenarios. make fuzz: 16 batches of 25, each with its own random
    # choices. Hypothesis tracks the choices it explored; against a database the earlier calls changed, the
    # same choices can meet other answers, and it then stops the batch with FlakyStrategyDefinition (a
    # generation artefact, no answer checked wrong). schemathesis's own runner moves on to the next batch; so
    # does this test, counting them. A failed check always fails the test.
    batches = fuzz_cases(1, 16)
    for _ in range(batches):
        try:
            Machine.run(settings=hypothesis.settings(
                max_examples=int(os.environ.get("SHEQU_CONTRACT_SCENARIOS", "25")),
                # generation only, as schemathesis's own runner does: shrinking replays scenarios against a
                # database the earlier calls changed
                phases=[hypothesis.Phase.generate],
                stateful_step_count=STEPS, deadline=None, derandomize=batches == 1, database=None,
                suppress_health_check=list(hypothesis.HealthCheck)))
        except hypothesis.errors.FlakyStrategyDefinition:
            STATEFUL["batches_cut_by_flaky_generation"] += 1
    STATEFUL["batches"] = batches
    assert STATEFUL["scenarios"] > 0


def test_contract_summary(output_dir, fuzz_cases):
    """Runs after the contract test (same module): the figures docs/reliability.md records."""
    if not CASES and not STATEFUL:
        pytest.skip("the contract tests did not run")
    summary = {"operations": len(CASES), "cases": sum(CASES.values()),
               "stateful": {"scenarios": STATEFUL["scenarios"], "calls": sum(STATEFUL_CALLS.values()),
                            "batches": STATEFUL["batches"],
                            "batches_cut_by_flaky_generation": STATEFUL["batches_cut_by_flaky_generation"],
                            "operations": len(STATEFUL_CALLS), "calls_per_operation": dict(STATEFUL_CALLS),
                            "path_operations_answered_2xx": dict(STATEFUL_OK)},
               "domain_refusals": {f"{op} → {code}": n for (op, code), n in sorted(DOMAIN_REFUSALS.items())}}
    name = fuzz_cases("contract-summary.json", "contract-summary-fuzz.json")
    (output_dir / name).write_text(json.dumps(summary, ensure_ascii=False, indent=1))
    assert not CASES or summary["operations"] >= 100
    assert not STATEFUL or summary["stateful"]["calls"] >= 2 * STATEFUL["scenarios"]
