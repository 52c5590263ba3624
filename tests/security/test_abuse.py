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
