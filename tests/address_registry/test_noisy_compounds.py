"""The noisy-form generator covers compounds (小区) in its ``alias`` form, and those queries resolve."""

from __future__ import annotations

from address_registry import store
from address_registry.noisy import noisy_queries


def test_alias_form_has_compound_names_and_numbers_inside_compounds(engine, geocoder):
    records = list(geocoder.by_code.values())
    with engine.connect() as conn:
        aliases = store.current_aliases(conn)
    queries = [q for q in noisy_queries(records, aliases, seed=7) if q[0] == "alias"]
    compounds = {c for c, r in geocoder.by_code.items() if r.level == "compound"}
    by_name = [(q, code) for _, q, code in queries if code in compounds]
    assert {code for _, code in by_name} == compounds  # every compound, by one of its names
    assert any(any(ch.isdigit() for ch in q) for q, _ in by_name)  # digit variants (崂山3村) too
    names = {}
    for a in aliases:
        if a.address_code in compounds:
            names.setdefault(a.address_code, []).append(a.alias)
    inside = [
        (q, code)
        for _, q, code in queries
        if code not in compounds
        and any(q.startswith(n) for n in names.get(geocoder.by_code[code].compound_code, []))
    ]
    assert len(inside) >= 10
    for q, code in by_name + inside:
        top = geocoder.geocode(q, limit=1)[0]
        assert top["address_code"] == code, (q, top["formatted"])
