import pytest

pytestmark = pytest.mark.django_db


def test_unknown_path_is_404_problem(anon_client):
    response = anon_client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "not_found" and body["status"] == 404 and body["instance"] == "/api/v1/nothing-here"


def test_wrong_method_is_405_problem(anon_client):
    response = anon_client.delete("/api/v1/datasets")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_malformed_json_is_400_parse_error(ops_client):
    response = ops_client.generic("POST", "/api/v1/ops/accounts", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_healthz(anon_client):
    assert anon_client.get("/healthz").json() == {"status": "ok"}


def test_readyz_ok_with_database_and_broker(anon_client):
    response = anon_client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_names_the_failing_broker(anon_client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = anon_client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "dependency_unavailable"
    assert "broker" in body["detail"]
    assert body["checks"]["database"] == "ok"


def test_openapi_schema_and_swagger_without_cdn(anon_client):
    schema = anon_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/datasets" in schema.json()["paths"]
    docs = anon_client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html
