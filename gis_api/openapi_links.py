"""OpenAPI links between operations (issue 15, the stateful half of the API contract).

A link says: "the value at this place of this response is a valid parameter of that operation" — a new
address's code is a valid ``{code}`` of ``GET /addresses/{code}``, a saved draft's id a valid
``{edit_id}`` of its submit, approve and rollback. Clients (and schemathesis's stateful phase) follow them
to chain calls on real resources instead of guessing ids that do not exist.

The links are declared here, in one table, and added once to the document FastAPI generates
(`add_links`). Every link names its source response by status code and its target by ``operationId``;
`links_of` checks that every path and parameter named exists, so a renamed route fails at start-up and in
the tests rather than leaving a dead link in the document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI


@dataclass(frozen=True)
class Link:
    """Values of one response (``source``, ``status``) that feed the parameters of ``target``."""

    source: tuple[str, str]  # (method, OpenAPI path) of the producing operation
    status: str  # the response that carries the values
    target: tuple[str, str]
    parameters: dict[str, str]  # "in.name" → runtime expression
    description: str = ""
    body: dict[str, Any] = field(default_factory=dict)


def _fan(source: tuple[str, str], status: str, targets: list[tuple[str, str]], param: str, expr: str,
         what: str) -> list[Link]:
    return [Link(source, status, t, {f"path.{param}": expr}, what) for t in targets]


#: operations taking a standard address's code in the path
_ADDRESS_TARGETS = [
    ("get", "/addresses/{code}"), ("patch", "/addresses/{code}"), ("get", "/addresses/{code}/history"),
    ("get", "/addresses/{code}/qr.svg"), ("post", "/addresses/{code}/aliases"),
    ("post", "/addresses/{code}/split"), ("post", "/addresses/{code}/retire"),
    ("get", "/residents/addresses/{code}/people"),
    ("post", "/residents/addresses/{code}/people"), ("get", "/residents/addresses/{code}/house"),
    ("put", "/residents/addresses/{code}/house"), ("get", "/residents/addresses/{code}/units"),
    ("post", "/residents/addresses/{code}/units"),
]
_GRID_TARGETS = [
    ("get", "/grids/{code}"), ("get", "/grids/{code}/stats"), ("get", "/grids/{code}/staff"),
    ("put", "/grids/{code}/staff"), ("get", "/grids/{code}/history"),
]
# not linked: GET /plates/{code} (needs the plate's check value `c`, which only the printed QR code holds) and
# GET /grids/{code}/diff (needs the two versions to compare)
_EDIT_TARGETS = [
    ("get", "/grid-edits/{edit_id}"), ("put", "/grid-edits/{edit_id}"), ("post", "/grid-edits/{edit_id}/submit"),
    ("post", "/grid-edits/{edit_id}/approve"), ("post", "/grid-edits/{edit_id}/reject"),
    ("post", "/grid-edits/{edit_id}/rollback"),
]
_JOB_TARGETS = [("get", "/analysis/jobs/{job_id}"), ("get", "/analysis/jobs/{job_id}/result"),
                ("post", "/analysis/jobs/{job_id}/cancel"), ("delete", "/analysis/jobs/{job_id}")]
_SCENARIO_TARGETS = [("get", "/analysis/scenarios/{scenario_id}"),
                     ("get", "/analysis/scenarios/{scenario_id}/report.{fmt}")]
_PERSON_TARGETS = [
    ("get", "/residents/people/{person_id}"), ("patch", "/residents/people/{person_id}"),
    ("get", "/residents/people/{person_id}/history"), ("post", "/residents/people/{person_id}/move"),
    ("post", "/residents/people/{person_id}/key-groups"),
]
_COLLECTION_TARGETS = [
    ("get", "/collections/{collection_id}"), ("get", "/collections/{collection_id}/queryables"),
    ("get", "/collections/{collection_id}/items"), ("get", "/collections/{collection_id}/schema"),
    ("get", "/collections/{collection_id}/tiles"),
]

LINKS: list[Link] = [
    # standard addresses: created, listed, split → read, correct, retire, split, plates, residents
    *_fan(("post", "/addresses"), "201", _ADDRESS_TARGETS, "code", "$response.body#/address_code",
          "新建地址的编码 the new address's code"),
    *_fan(("get", "/addresses"), "200", _ADDRESS_TARGETS, "code", "$response.body#/addresses/0/address_code",
          "列表中第一个地址的编码 the first listed address's code"),
    *_fan(("post", "/addresses/{code}/split"), "201", [("get", "/addresses/{code}")], "code",
          "$response.body#/created/0/address_code", "拆分出的第一个新地址 the first new address of the split"),
    *_fan(("post", "/addresses/{code}/split"), "201", [("get", "/addresses/{code}/history")], "code",
          "$request.path.code", "被拆分（已注销）的地址 the retired address"),
    *_fan(("post", "/addresses/{code}/retire"), "200", [("get", "/addresses/{code}/history")], "code",
          "$request.path.code", "已注销地址的历史 the retired address's history"),
    *_fan(("patch", "/addresses/{code}"), "200", [("get", "/addresses/{code}")], "code",
          "$request.path.code", "更正后的地址 the corrected address"),
    # grids
    *_fan(("get", "/grids"), "200", _GRID_TARGETS, "code", "$response.body#/features/0/id",
          "列表中第一个网格 the first listed grid"),
    *_fan(("put", "/grids/{code}/staff"), "200", [("get", "/grids/{code}/staff")], "code",
          "$request.path.code", "刚保存的网格人员 the staff just saved"),
    # grid edits: draft → read, save again, submit, approve, reject; applied → read, roll back
    *_fan(("post", "/grid-edits"), "201", _EDIT_TARGETS, "edit_id", "$response.body#/id",
          "新草稿 the new draft"),
    *_fan(("post", "/grid-edits/apply"), "201", [("get", "/grid-edits/{edit_id}"),
                                                 ("post", "/grid-edits/{edit_id}/rollback")],
          "edit_id", "$response.body#/id", "已生效的编辑 the applied edit"),
    *_fan(("get", "/grid-edits"), "200", _EDIT_TARGETS, "edit_id", "$response.body#/edits/0/id",
          "列表中第一个编辑 the first listed edit"),
    *_fan(("post", "/grid-edits/{edit_id}/submit"), "200",
          [("post", "/grid-edits/{edit_id}/approve"), ("post", "/grid-edits/{edit_id}/reject")],
          "edit_id", "$request.path.edit_id", "已提交的编辑 the submitted edit"),
    *_fan(("post", "/grid-edits/{edit_id}/approve"), "200",
          [("get", "/grid-edits/{edit_id}"), ("post", "/grid-edits/{edit_id}/rollback")],
          "edit_id", "$request.path.edit_id", "已批准的编辑 the approved edit"),
    # analysis jobs and saved scenarios
    *_fan(("post", "/analysis/jobs"), "202", _JOB_TARGETS, "job_id", "$response.body#/id",
          "新任务 the new job"),
    *_fan(("get", "/analysis/jobs"), "200", _JOB_TARGETS, "job_id", "$response.body#/0/id",
          "最近的任务 the latest job"),
    *_fan(("post", "/analysis/scenarios"), "201", _SCENARIO_TARGETS, "scenario_id", "$response.body#/id",
          "刚保存的方案 the scenario just saved"),
    *_fan(("get", "/analysis/scenarios"), "200", _SCENARIO_TARGETS, "scenario_id", "$response.body#/0/id",
          "最新的方案 the latest scenario"),
    # key places
    *_fan(("post", "/key-places"), "201", [("patch", "/key-places/{place_id}")], "place_id",
          "$response.body#/id", "新登记的重点场所 the new key place"),
    *_fan(("get", "/key-places"), "200", [("patch", "/key-places/{place_id}")], "place_id",
          "$response.body#/key_places/0/id", "列表中第一个重点场所 the first listed key place"),
    # people and units
    *_fan(("post", "/residents/addresses/{code}/people"), "201", _PERSON_TARGETS, "person_id",
          "$response.body#/id", "新登记的人员 the person just recorded"),
    *_fan(("get", "/residents/addresses/{code}/people"), "200", _PERSON_TARGETS, "person_id",
          "$response.body#/people/0/id", "该地址的第一个人员 the first person at the address"),
    *_fan(("post", "/residents/addresses/{code}/units"), "201", [("patch", "/residents/units/{unit_id}")],
          "unit_id", "$response.body#/id", "新登记的单位 the unit just recorded"),
    *_fan(("get", "/residents/addresses/{code}/units"), "200", [("patch", "/residents/units/{unit_id}")],
          "unit_id", "$response.body#/units/0/id", "该地址的第一个单位 the first unit at the address"),
    # plate reports, reconciliation tasks, police areas
    *_fan(("post", "/plates/{code}/reports"), "201", [("post", "/plate-reports/{report_id}/state")],
          "report_id", "$response.body#/id", "新的门牌纠错报告 the new report"),
    *_fan(("get", "/plate-reports"), "200", [("post", "/plate-reports/{report_id}/state")],
          "report_id", "$response.body#/reports/0/id", "列表中第一个报告 the first listed report"),
    *_fan(("get", "/reconcile/tasks"), "200", [("get", "/reconcile/tasks/{task_id}"),
                                               ("post", "/reconcile/tasks/{task_id}/state")],
          "task_id", "$response.body#/tasks/0/id", "列表中第一个核对任务 the first listed task"),
    *_fan(("get", "/police-areas"), "200", [("get", "/police-areas/{code}"), ("put", "/police-areas/{code}")],
          "code", "$response.body#/police_areas/0/code", "列表中第一个辖区 the first listed area"),
    # OGC API: a collection → its metadata, items, tiles; an item page → one item
    *_fan(("get", "/collections"), "200", _COLLECTION_TARGETS, "collection_id",
          "$response.body#/collections/0/id", "第一个图层 the first collection"),
    Link(("get", "/collections/{collection_id}/items"), "200", ("get", "/collections/{collection_id}/items/{fid}"),
         {"path.collection_id": "$request.path.collection_id", "path.fid": "$response.body#/features/0/id"},
         "本页第一个要素 the first feature of the page"),
]


def _operation_ids(doc: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(method, path): op["operationId"] for path, item in doc.get("paths", {}).items()
            for method, op in item.items() if isinstance(op, dict) and "operationId" in op}


def _name(link: Link) -> str:
    method, path = link.target
    words = [w.strip("{}") for w in path.replace(".", "/").split("/") if w]
    return method.upper() + "_" + "_".join(words)


def links_of(doc: dict[str, Any], links: list[Link] = LINKS) -> dict[tuple[str, str, str], dict[str, dict]]:
    """(source method, path, status) → {link name: OpenAPI link object}; a link naming a path, an operation
    or a path parameter the document does not have raises ``ValueError``."""
    ids = _operation_ids(doc)
    out: dict[tuple[str, str, str], dict[str, dict]] = {}
    for link in links:
        for end in (link.source, link.target):
            if end not in ids:
                raise ValueError(f"link {link.source} → {link.target}: no operation {end[0].upper()} {end[1]}")
        source = doc["paths"][link.source[1]][link.source[0]]
        if link.status not in source.get("responses", {}):
            raise ValueError(f"link from {link.source}: the operation declares no {link.status} response")
        target = doc["paths"][link.target[1]][link.target[0]]
        path_params = {p["name"] for p in target.get("parameters", []) if p.get("in") == "path"}
        for key in link.parameters:
            where, name = key.split(".", 1)
            if where == "path" and name not in path_params:
                raise ValueError(f"link to {link.target}: no path parameter {name}")
        obj: dict[str, Any] = {"operationId": ids[link.target], "parameters": dict(link.parameters)}
        if link.description:
            obj["description"] = link.description
        if link.body:
            obj["requestBody"] = link.body
        named = out.setdefault((*link.source, link.status), {})
        name = _name(link)
        if name in named:  # two values of one response feed the same operation: keep both, told apart
            name = f"{name}_{len(named)}"
        named[name] = obj
    return out


def add_links(app: FastAPI) -> None:
    """Make ``app.openapi()`` carry `LINKS` on the responses they start from (added once; the document is
    cached by FastAPI)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        doc = generate()
        if doc.get("x-shequ-links"):
            return doc
        for (method, path, status), named in links_of(doc).items():
            response = doc["paths"][path][method]["responses"][status]
            response.setdefault("links", {}).update(named)
        doc["x-shequ-links"] = len(LINKS)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
