"""The API contract, tried as an outside client would (issue 15): schemathesis with all its checks, against
the app in-process (ASGI), signed in as an admin, on a copy of the test database (its writes never reach the
other tests). Every operation of the OpenAPI document runs a few examples in `make test` and many under
`make fuzz` (SHEQU_FUZZ=1); the numbers of cases and failures go to docs/reliability.md.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gis_api.auth import roles as r

#: cases run per operation label (read by the summary test at the end of the module)
CASES: Counter[str] = Counter()


def _copy_database(url: str, name: str) -> str:
    """A fresh copy of the database at ``url`` named ``name`` (CREATE DATABASE … TEMPLATE); its URL."""
    src = make_url(url)
    admin = create_engine(src.set(database="postgres").set(drivername="postgresql+psycopg"),
                          isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            # a template must have no other session: the test engine's idle connections are closed (its
            # pool reconnects: pre-ping)
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": src.database})
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{src.database}"'))
    finally:
        admin.dispose()
    return src.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def contract_schema(pg_url, engine, role_headers, fuzz_cases):
    from gis_api.app import create_app

    engine.dispose()
    url = _copy_database(pg_url, "shequ_contract")
    app = create_app(db_url=url)
    examples = fuzz_cases(int(os.environ.get("SHEQU_CONTRACT_EXAMPLES", "3")), 150)
    config = SchemathesisConfig.from_dict({
        # the caller signs in with the admin's token (below); generated credentials would only be refused
        "generation": {"max-examples": examples, "with-security-parameters": False},
        "seed": 15,
    })
    yield schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    app.state.engine.dispose()


schema = schemathesis.pytest.from_fixture("contract_schema")


@pytest.mark.fuzz
@schema.parametrize()
def test_contract(case, role_headers):
    CASES[f"{case.method} {case.path}"] += 1
    case.call_and_validate(headers=role_headers[r.ADMIN])
