"""The OpenAPI links of the document (issue 15, gis_api/openapi_links.py) are true: followed from a real
answer, each reaches its target operation with a real resource."""

from __future__ import annotations

import pytest

from gis_api.openapi_links import LINKS, Link, links_of


def _pointer(doc, pointer: str):
    node = doc
    for part in pointer.lstrip("/").split("/"):
        if isinstance(node, list):
            idx = int(part)
            if idx >= len(node):
                return None
            node = node[idx]
        elif isinstance(node, dict):
            if part not in node:
                return None
            node = node[part]
        else:
            return None
    return node


def _value(expression: str, body, request_path: dict[str, str]):
    if expression.startswith("$response.body#"):
        return _pointer(body, expression.split("#", 1)[1])
    if expression.startswith("$request.path."):
        return request_path[expression.removeprefix("$request.path.")]
    raise AssertionError(f"unexpected expression {expression}")


def test_every_link_is_in_the_document(client):
    doc = client.get("/openapi.json").json()
    declared = {(path, method, status, name): link
                for path, item in doc["paths"].items() for method, op in item.items() if isinstance(op, dict)
                for status, response in op.get("responses", {}).items()
                for name, link in (response.get("links") or {}).items()}
    assert len(declared) == len(LINKS)
    ids = {op["operationId"] for item in doc["paths"].values() for op in item.values() if isinstance(op, dict)}
    assert all(link["operationId"] in ids for link in declared.values())
    # a link to a route that does not exist, or to a parameter it does not take, fails loudly
    with pytest.raises(ValueError, match="no operation"):
        links_of(doc, [Link(("get", "/addresses"), "200", ("get", "/nowhere/{x}"), {"path.x": "$response.body#/a"})])
    with pytest.raises(ValueError, match="no path parameter"):
        links_of(doc, [Link(("get", "/addresses"), "200", ("get", "/grids/{code}"), {"path.id": "$response.body#/a"})])
    with pytest.raises(ValueError, match="declares no 299"):
        links_of(doc, [Link(("get", "/addresses"), "299", ("get", "/grids/{code}"), {"path.code": "$response.body#/a"})])


#: list operations and the query that makes their first item a real one
_LIST_QUERIES = {"/addresses": {"limit": 5, "level": "house_number"}, "/grids": {"limit": 2},
                 "/collections": {}, "/police-areas": {}}


@pytest.mark.parametrize("source", sorted(_LIST_QUERIES))
def test_links_from_lists_reach_a_real_resource(client, jurisdictions, source):
    """Each link from a list answer, followed to a read (GET) of the target: 200, never 404 or 422 —
    the value the link names is a valid parameter of the operation it points to. (``jurisdictions`` builds
    the registry and two communities' grids, so the lists are not empty when this file runs alone.)"""
    first = client.get(source, params=_LIST_QUERIES[source])
    assert first.status_code == 200, first.text
    doc = client.get("/openapi.json").json()
    followed = 0
    for link in LINKS:
        if link.source != ("get", source) or link.target[0] != "get":
            continue
        params = {key.split(".", 1)[1]: _value(expr, first.json(), {}) for key, expr in link.parameters.items()}
        assert all(v is not None for v in params.values()), (link, first.text[:300])
        path = link.target[1]
        for name, value in params.items():
            path = path.replace("{" + name + "}", str(value))
        path = path.replace("{fmt}", "csv")
        answer = client.get(path)
        assert answer.status_code == 200, (link.target, path, answer.status_code, answer.text[:300])
        # the answer's media type is one the document declares (the stateful phase found
        # /collections/{id}/schema answering application/schema+json, declared as application/json only)
        declared = doc["paths"][link.target[1]]["get"]["responses"]["200"].get("content", {})
        media = answer.headers["content-type"].split(";")[0]
        assert not declared or media in declared, (path, media, list(declared))
        followed += 1
    assert followed >= 1


def test_links_from_a_submitted_job(client, jurisdictions):
    """A job submitted (202) → its status by the link's value; cancelling and deleting it by the same value."""
    doc = client.get("/openapi.json").json()
    links = doc["paths"]["/analysis/jobs"]["post"]["responses"]["202"]["links"]
    assert {link["parameters"]["path.job_id"] for link in links.values()} == {"$response.body#/id"}
    job = client.post("/analysis/jobs", json={"kind": "coverage", "params": {
        "facility_type": "幼儿园", "distance": "walk", "community_code": jurisdictions["community"]}})
    assert job.status_code == 202, job.text
    job_id = _value("$response.body#/id", job.json(), {})
    assert client.get(f"/analysis/jobs/{job_id}").json()["id"] == job_id
    assert client.post(f"/analysis/jobs/{job_id}/cancel").status_code in (200, 409)  # 409: already ended
    assert client.delete(f"/analysis/jobs/{job_id}").status_code == 204
    assert client.get(f"/analysis/jobs/{job_id}").status_code == 404
