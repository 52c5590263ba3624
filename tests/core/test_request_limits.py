import pytest

pytestmark = pytest.mark.django_db

URL = "/api/v1/ops/accounts"


def test_oversized_body_is_413(ops_client, settings):
    settings.API_MAX_BODY_BYTES = 1000
    body = '{"ref": "big", "role": "quant", "name": "' + "x" * 2000 + '"}'
    response = ops_client.generic("POST", URL, body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_deeply_nested_json_is_400_not_500(ops_client):
    body = "[" * 5000 + "]" * 5000
    response = ops_client.generic("POST", URL, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_moderately_nested_json_over_the_limit_is_400(ops_client, settings):
    settings.API_MAX_JSON_DEPTH = 5
    body = '{"ref": "n", "role": "quant", "name": ' + "[" * 6 + "]" * 6 + "}"
    response = ops_client.generic("POST", URL, body, content_type="application/json")
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


def test_non_json_content_type_is_415(ops_client):
    response = ops_client.generic("POST", URL, "ref=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
