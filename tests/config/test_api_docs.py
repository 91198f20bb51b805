"""The OpenAPI schema and the human-readable docs at /api/docs/ (served without a CDN)."""

from __future__ import annotations

import re

import pytest

JSON_METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def schema(api):
    response = api.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in JSON_METHODS:
                yield path, method, operation


def test_every_operation_has_a_description_that_says_what_it_does(schema):
    missing = [f"{m.upper()} {p}" for p, m, op in _operations(schema) if len(op.get("description", "")) < 15]
    assert not missing, missing


def test_every_operation_with_a_json_body_shows_an_example(schema):
    missing = []
    for path, method, operation in _operations(schema):
        bodies = [operation.get("requestBody", {}).get("content", {})]
        bodies += [r.get("content", {}) for r in operation["responses"].values()]
        json_bodies = [c for body in bodies for media, c in body.items() if "json" in media]
        if json_bodies and not any(c.get("examples") for c in json_bodies):
            missing.append(f"{method.upper()} {path}")
    assert not missing, missing


def test_a_list_example_is_a_page_and_lists_say_how_to_filter(schema):
    listing = schema["paths"]["/api/v1/grids/"]["get"]
    example = listing["responses"]["200"]["content"]["application/json"]["examples"]["Example"]["value"]
    assert {"count", "next", "previous", "results"} <= set(example)
    assert example["results"][0]["barcode"]
    assert "?search=" in listing["description"] and "?format=csv" in listing["description"]
    names = {p["name"] for p in listing["parameters"]}
    assert {"state", "q", "page_size", "ordering", "search"} <= names


def test_the_gate_documents_its_answer(schema):
    gate = schema["paths"]["/api/v1/grids/{grid_pk}/gate/"]["get"]["responses"]["200"]["content"]["application/json"]
    assert gate["schema"]["$ref"].endswith("/GateEvaluation")


def test_the_docs_page_loads_swagger_ui_from_the_app_not_a_cdn(web):
    page = web.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui" in s for s in sources)
    assert all(s.startswith("/") for s in sources), sources
    assert "/api/v1/schema/" in html


def test_the_schema_needs_a_login(client, db):
    assert client.get("/api/v1/schema/").status_code in (302, 401, 403)


def test_read_only_fields_that_may_be_empty_are_documented_as_nullable(schema):
    components = schema["components"]["schemas"]
    assert components["Grid"]["properties"]["box_name"].get("nullable") is True  # a grid without a box
    assert components["Dataset"]["properties"]["decided_by"].get("nullable") is True  # no decision yet
    assert components["ReconstructionJob"]["properties"]["duration_s"].get("nullable") is True  # not finished
    assert not components["Grid"]["properties"]["barcode"].get("nullable")


def test_answers_and_requests_are_separate_components_with_the_names_the_server_uses(schema):
    components = schema["components"]["schemas"]
    run = components["PlungeRun"]  # answered: grids and outcomes read back under the names written
    assert {"grids", "outcomes"} <= set(run["properties"]) and "grid_ids" not in run["properties"]
    assert {"grids", "instrument"} <= set(components["PlungeRunRequest"]["required"])


def test_actions_document_what_they_take_and_answer(schema):
    paths = schema["paths"]
    move = paths["/api/v1/grids/{id}/move/"]["post"]
    assert move["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/MoveRequest")
    members = paths["/api/v1/labs/{id}/members/"]
    assert members["get"]["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    assert members["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/MemberAddRequest")
    sheet = paths["/api/v1/sessions/{id}/sample-sheet/"]["get"]["responses"]["200"]["content"]["application/json"]
    assert sheet["schema"]["type"] == "array"  # the whole sheet, not a page
    queue = paths["/api/v1/checks/review-queue/"]["get"]["responses"]["200"]["content"]["application/json"]
    assert queue["schema"]["$ref"].endswith("/PaginatedCheckList")
    label = paths["/api/v1/grids/{id}/label/"]["get"]["responses"]["200"]["content"]
    assert {"image/svg+xml", "image/png"} <= set(label)
    assert "image/jpeg" in paths["/api/v1/check-images/{id}/preview/"]["get"]["responses"]["200"]["content"]
