"""Inputs the server did not issue or cannot store are 400s that name the parameter, never 404s or 500s."""

import base64

import pytest


def _cursor(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


def _problem(response, field):
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in body["errors"]
    return body


@pytest.mark.parametrize("cursor", ["abc", "not-base64!", _cursor("o=-1"), _cursor("p=abc"), _cursor("p=1e999")])
def test_a_cursor_the_server_did_not_issue_is_a_400(ops_client, cursor):
    _problem(ops_client.get("/api/v1/ops/accounts", {"cursor": cursor}), "cursor")


def test_a_tampered_cursor_position_on_a_time_ordering_is_a_400(seller_client):
    response = seller_client.get("/api/v1/deals", {"cursor": _cursor("p=yesterday")})
    _problem(response, "cursor")


def test_an_issued_cursor_still_pages(ops_client, make_client):
    for _ in range(3):
        make_client("buyer")
    first = ops_client.get("/api/v1/ops/accounts", {"page_size": 2}).json()
    assert first["next"]
    second = ops_client.get(first["next"])
    assert second.status_code == 200
    assert {a["ref"] for a in second.json()["results"]}.isdisjoint({a["ref"] for a in first["results"]})


@pytest.mark.parametrize("page", ["0", "-1", "abc", "999"])
def test_a_page_number_out_of_range_is_a_400(anon_client, catalog, page):
    _problem(anon_client.get("/api/v1/datasets", {"page": page}), "page")


def test_an_offset_postgresql_cannot_store_is_compared_in_utc(seller_client):
    # Python accepts offsets to +-23:59, PostgreSQL only to +-15:59.
    response = seller_client.get("/api/v1/deals", {"updated_after": "2024-08-05T14:24:30-22:55"})
    assert response.status_code == 200, response.content


def test_an_instant_outside_the_calendar_in_utc_is_a_400(seller_client):
    response = seller_client.get("/api/v1/deals", {"updated_after": "0001-01-01T00:00:00+23:00"})
    _problem(response, "updated_after")
