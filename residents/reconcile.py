"""Police–grid comparison of 一标三实 per address (实时比对): pure, plain records in, mismatches out.

The police side is the latest extract of a police-station area (`police_record`); the grid side is what the
grid workers recorded (people living at addresses, house records, units). Per address:

- ``police_only``: a person (or unit) in the police extract whom the grid has nowhere;
- ``grid_only``: a person the grid records in the area whom the police extract does not hold;
- ``different_address``: the same document at different addresses in the two sources;
- ``field_conflict``: the same person at the same address with a different name or registration (or a
  house whose use differs);
- ``vacant_occupied``: a house the grid marks 空置 (vacant) while people live there (either source);
- ``unit_no_credit_code`` / ``unit_not_in_police``: a grid unit with no 统一社会信用代码, or one the police
  extract does not hold.

Everything else is ``matched``. The result is deterministic (sorted), so a re-run finds the same mismatches.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

PERSON_FIELDS = ("name", "registration")


@dataclass(frozen=True)
class Mismatch:
    """One difference between the two sources at an address; ``subject`` tells which record it is about."""

    kind: str
    address_code: str
    subject: str
    person_id: int | None = None
    unit_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Outcome:
    """The mismatches and the counts of each outcome (``matched`` included)."""

    mismatches: list[Mismatch]
    counts: dict[str, int]


def _doc(rec: dict[str, Any]) -> tuple[str, str] | None:
    number = rec.get("id_number")
    return ((rec.get("id_type") or "citizen_id"), str(number).upper()) if number else None


def _people(police: list[dict[str, Any]], grid_in_area: list[dict[str, Any]],
            grid_by_doc: dict[tuple[str, str], dict[str, Any]], counts: Counter) -> list[Mismatch]:
    out: list[Mismatch] = []
    police_docs = set()
    for p in police:
        key = _doc(p)
        if key is None:
            continue
        police_docs.add(key)
        g = grid_by_doc.get(key)
        subject = key[1]
        if g is None:
            out.append(Mismatch("police_only", p["address_code"], subject,
                                detail={"record": "person", "police": {"name": p.get("name")}}))
        elif g["address_code"] != p["address_code"]:
            out.append(Mismatch("different_address", p["address_code"], subject, person_id=g["person_id"],
                                detail={"record": "person", "police_address": p["address_code"],
                                        "grid_address": g["address_code"]}))
        else:
            diff = {f: {"police": p.get(f), "grid": g.get(f)} for f in PERSON_FIELDS
                    if p.get(f) and g.get(f) and p.get(f) != g.get(f)}
            if diff:
                out.append(Mismatch("field_conflict", p["address_code"], subject, person_id=g["person_id"],
                                    detail={"record": "person", "fields": diff}))
            else:
                counts["matched"] += 1
    for g in grid_in_area:
        key = _doc(g)
        if key is not None and key in police_docs:
            continue
        subject = key[1] if key else f"person:{g['person_id']}"
        out.append(Mismatch("grid_only", g["address_code"], subject, person_id=g["person_id"],
                            detail={"record": "person", "grid": {"name": g.get("name")}}))
    return out


def _houses(police: list[dict[str, Any]], houses: dict[str, str], occupied: set[str],
            counts: Counter) -> list[Mismatch]:
    out: list[Mismatch] = []
    police_use = {p["address_code"]: p.get("house_use") for p in police if p.get("house_use")}
    for code in sorted(set(houses) | set(police_use)):
        use, puse = houses.get(code), police_use.get(code)
        if use == "空置" and code in occupied:
            out.append(Mismatch("vacant_occupied", code, "house", detail={"record": "house", "grid_use": use}))
        elif use and puse and use != puse:
            out.append(Mismatch("field_conflict", code, "house",
                                detail={"record": "house", "fields": {"use": {"police": puse, "grid": use}}}))
        elif use and puse:
            counts["matched"] += 1
    return out


def _units(police: list[dict[str, Any]], units: list[dict[str, Any]], grid_codes: set[str],
           counts: Counter) -> list[Mismatch]:
    out: list[Mismatch] = []
    police_codes = {str(p["credit_code"]).upper(): p for p in police if p.get("credit_code")}
    for u in units:
        code = (u.get("credit_code") or "").upper()
        if not code:
            out.append(Mismatch("unit_no_credit_code", u["address_code"], f"unit:{u['unit_id']}",
                                unit_id=u["unit_id"], detail={"record": "unit", "name": u.get("name")}))
        elif code not in police_codes:
            out.append(Mismatch("unit_not_in_police", u["address_code"], code, unit_id=u["unit_id"],
                                detail={"record": "unit", "name": u.get("name")}))
        else:
            counts["matched"] += 1
    for code, p in sorted(police_codes.items()):
        if code not in grid_codes:
            out.append(Mismatch("police_only", p["address_code"], code,
                                detail={"record": "unit", "police": {"name": p.get("name")}}))
    return out


def compare(police: list[dict[str, Any]], grid_people_in_area: list[dict[str, Any]],
            grid_people_by_doc: list[dict[str, Any]], houses: dict[str, str], units: list[dict[str, Any]],
            grid_credit_codes: set[str] | None = None) -> Outcome:
    """Compare the police extract with the grid's records of the same area.

    ``police``: records with ``record_type`` person / house / unit, ``address_code`` and the fields;
    ``grid_people_in_area``: people living in the area (``person_id``, document, ``name``, ``registration``,
    ``address_code``); ``grid_people_by_doc``: where the grid has the police extract's documents (anywhere);
    ``houses``: grid house use per address in the area; ``units``: grid units in the area;
    ``grid_credit_codes``: every current grid credit code (default: those of ``units``)."""
    counts: Counter = Counter()
    by_type: dict[str, list[dict[str, Any]]] = {"person": [], "house": [], "unit": []}
    for p in police:
        by_type.setdefault(p["record_type"], []).append(p)
    by_doc = {k: g for g in grid_people_by_doc if (k := _doc(g)) is not None}
    occupied = {g["address_code"] for g in grid_people_in_area} | {p["address_code"] for p in by_type["person"]}
    codes = grid_credit_codes if grid_credit_codes is not None else {
        (u.get("credit_code") or "").upper() for u in units if u.get("credit_code")}
    found = (_people(by_type["person"], grid_people_in_area, by_doc, counts)
             + _houses(by_type["house"], houses, occupied, counts)
             + _units(by_type["unit"], units, codes, counts))
    found.sort(key=lambda m: (m.address_code, m.kind, m.subject))
    for m in found:
        counts[m.kind] += 1
    return Outcome(found, dict(counts))
