"""Anonymous rate limits cannot be dodged by sending a made-up X-Forwarded-For."""

import pytest


@pytest.fixture
def tight_anonymous_limit(settings, catalog):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "100/min", "anon": "2/min"},
    }


def test_a_forged_forwarded_for_does_not_give_a_fresh_bucket(anon_client, tight_anonymous_limit, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    statuses = [
        anon_client.get(
            "/api/v1/datasets", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}"
        ).status_code
        for n in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_behind_a_trusted_proxy_the_client_address_it_saw_is_the_bucket(anon_client, tight_anonymous_limit, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = "10.0.0.5"

    def get(forwarded_for):
        return anon_client.get("/api/v1/datasets", REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=forwarded_for).status_code

    # The client prepends whatever it likes; the load balancer appends the address it saw.
    assert [get(f"1.1.1.{n}, 203.0.113.7") for n in range(3)] == [200, 200, 429]
    assert get("203.0.113.8") == 200  # another client behind the same proxy has its own bucket


def test_a_throttled_post_is_not_replayed_once_the_limit_allows_it(ops_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "1/min", "anon": "1/min"},
    }
    assert ops_client.get("/api/v1/ops/accounts").status_code == 200
    body = {"ref": "retried-account", "role": "buyer"}
    throttled = ops_client.post("/api/v1/ops/accounts", body, format="json", HTTP_IDEMPOTENCY_KEY="create-1")
    assert throttled.status_code == 429

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "100/min", "anon": "1/min"},
    }
    retried = ops_client.post("/api/v1/ops/accounts", body, format="json", HTTP_IDEMPOTENCY_KEY="create-1")
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried


def test_requests_without_a_valid_key_leave_no_idempotency_record(anon_client, quant_client):
    from core.models import IdempotencyRecord

    for n in range(5):
        assert anon_client.post("/api/v1/deals", {}, format="json", HTTP_IDEMPOTENCY_KEY=f"k{n}").status_code == 401
        assert quant_client.post("/api/v1/deals", {}, format="json", HTTP_IDEMPOTENCY_KEY=f"k{n}").status_code == 403
    assert not IdempotencyRecord.objects.exists()
