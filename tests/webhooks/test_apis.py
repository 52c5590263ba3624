"""The endpoints API, SSRF rules at registration, and the polling feed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.webhooks.conftest import EVENT, OTHER_EVENT
from webhooks.models import Delivery, Endpoint

PUBLIC_URL = "https://93.184.215.14/hooks"  # a public address literal: no DNS needed


@pytest.fixture(autouse=True)
def _private_urls_refused(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False


def _problem(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code
    return body


# --- endpoints ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["quant", "ops", "seller", "buyer"])
def test_any_role_registers_an_endpoint_and_sees_the_secret_once(make_client, role):
    client = make_client(role)
    response = client.post(
        "/api/v1/webhook-endpoints",
        {"url": PUBLIC_URL, "event_types": [OTHER_EVENT, EVENT, EVENT], "description": "prod"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["url"] == PUBLIC_URL
    assert body["event_types"] == sorted([EVENT, OTHER_EVENT])
    assert body["enabled"] is True
    assert body["description"] == "prod"

    listed = client.get("/api/v1/webhook-endpoints").json()["results"]
    assert [e["id"] for e in listed] == [body["id"]]
    assert "secret" not in listed[0]
    got = client.get(f"/api/v1/webhook-endpoints/{body['id']}").json()
    assert "secret" not in got
    assert got["url"] == PUBLIC_URL


def test_endpoint_types_default_to_all_and_star_means_all(buyer_client):
    response = buyer_client.post("/api/v1/webhook-endpoints", {"url": PUBLIC_URL}, format="json")
    assert response.json()["event_types"] == []
    response = buyer_client.post(
        "/api/v1/webhook-endpoints", {"url": PUBLIC_URL, "event_types": ["*", EVENT]}, format="json"
    )
    assert response.json()["event_types"] == ["*"]


def test_unknown_event_types_are_refused_naming_the_field(buyer_client):
    response = buyer_client.post(
        "/api/v1/webhook-endpoints",
        {"url": PUBLIC_URL, "event_types": ["deal.created", "deal.exploded"]},
        format="json",
    )
    body = _problem(response, 400, "validation_error")
    assert "deal.exploded" in body["errors"]["event_types"][0]


def test_an_account_has_a_bounded_number_of_endpoints(buyer_client, make_client, settings):
    settings.WEBHOOKS_MAX_ENDPOINTS_PER_ACCOUNT = 2
    for _ in range(2):
        assert buyer_client.post("/api/v1/webhook-endpoints", {"url": PUBLIC_URL}, format="json").status_code == 201
    body = _problem(
        buyer_client.post("/api/v1/webhook-endpoints", {"url": PUBLIC_URL}, format="json"), 409, "too_many_endpoints"
    )
    assert "2" in body["detail"]
    other = make_client("buyer")
    assert other.post("/api/v1/webhook-endpoints", {"url": PUBLIC_URL}, format="json").status_code == 201


def test_update_delete_and_isolation_between_accounts(make_client):
    owner, stranger = make_client("seller"), make_client("seller")
    endpoint = owner.post("/api/v1/webhook-endpoints", {"url": PUBLIC_URL}, format="json").json()
    path = f"/api/v1/webhook-endpoints/{endpoint['id']}"

    for method, extra in [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "/rotate-secret"),
        ("post", "/ping"),
        ("get", "/deliveries"),
        ("post", "/redeliver-failed"),
    ]:
        response = getattr(stranger, method)(path + extra, {}, format="json")
        _problem(response, 404, "not_found")
    assert stranger.get("/api/v1/webhook-endpoints").json()["results"] == []

    response = owner.patch(
        path,
        {"url": "https://93.184.215.15/v2", "event_types": [EVENT], "description": "v2"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["url"] == "https://93.184.215.15/v2"
    assert response.json()["event_types"] == [EVENT]
    assert response.json()["description"] == "v2"

    assert owner.delete(path).status_code == 204
    _problem(owner.get(path), 404, "not_found")


def test_another_accounts_delivery_cannot_be_redelivered(make_client, publish):
    owner, stranger = make_client("buyer"), make_client("buyer")
    endpoint_id = owner.post("/api/v1/webhook-endpoints", {"url": PUBLIC_URL}, format="json").json()["id"]
    event = publish(owner.account)
    from webhooks import services

    services.event_fanout(event_id=event.pk)  # fan out without sending
    delivery = Delivery.objects.get(endpoint_id=endpoint_id)
    _problem(stranger.post(f"/api/v1/webhook-deliveries/{delivery.pk}/redeliver"), 404, "not_found")


@pytest.mark.usefixtures("api_keys_kept")
def test_list_endpoints_query_count_is_flat(buyer_client, django_assert_num_queries):
    for n in range(5):
        buyer_client.post("/api/v1/webhook-endpoints", {"url": f"{PUBLIC_URL}/{n}"}, format="json")
    with django_assert_num_queries(1):
        response = buyer_client.get("/api/v1/webhook-endpoints")
    assert len(response.json()["results"]) == 5


@pytest.mark.usefixtures("api_keys_kept")
def test_delivery_list_with_attempts_query_count_is_flat(
    buyer_client, webhook_receiver, deliver_now, register_endpoint, publish, django_assert_num_queries, settings
):
    settings.WEBHOOKS_RETRY_SCHEDULE = [timedelta(seconds=0)]
    endpoint = register_endpoint(buyer_client, webhook_receiver.url)
    webhook_receiver.script([(500, None, 0)] * 10)
    for _ in range(5):
        publish(buyer_client.account)
    deliver_now()
    with django_assert_num_queries(3):
        response = buyer_client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries")
    results = response.json()["results"]
    assert len(results) == 5
    assert all(len(d["attempts"]) == 2 for d in results)
    assert all(d["status"] == "failed" for d in results)
    failed = buyer_client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries", {"status": "succeeded"})
    assert failed.json()["results"] == []
    _problem(
        buyer_client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries", {"status": "lost"}),
        400,
        "validation_error",
    )


def test_redeliver_on_a_disabled_endpoint_is_a_conflict(buyer_client, publish, deliver_now):
    endpoint = buyer_client.post("/api/v1/webhook-endpoints", {"url": PUBLIC_URL}, format="json").json()
    buyer_client.patch(f"/api/v1/webhook-endpoints/{endpoint['id']}", {"enabled": False}, format="json")
    publish(buyer_client.account)
    deliver_now()
    delivery = Delivery.objects.get()
    assert delivery.status == "failed"
    _problem(buyer_client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/redeliver"), 409, "endpoint_disabled")
    _problem(buyer_client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/ping"), 409, "endpoint_disabled")
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    _problem(
        buyer_client.post(
            f"/api/v1/webhook-endpoints/{endpoint['id']}/redeliver-failed", {"since": since}, format="json"
        ),
        409,
        "endpoint_disabled",
    )
    body = _problem(
        buyer_client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/redeliver-failed", {}, format="json"),
        400,
        "validation_error",
    )
    assert "since" in body["errors"]


# --- SSRF at registration -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",  # a hostname that resolves to 127.0.0.1
        "http://2130706433/hook",  # 127.0.0.1 spelled as a number
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.10/hook",
        "http://100.64.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.10.1/hook",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "http://[::]/hook",
        "http://224.0.0.1/hook",
        "http://239.255.255.250/hook",
        "http://240.0.0.1/hook",
        "http://255.255.255.255/hook",
        "http://[64:ff9b::7f00:1]/hook",
        "http://[2002:7f00:1::]/hook",
        "http://[ff02::1]/hook",
        "ftp://93.184.215.14/hook",
        "file:///etc/passwd",
        "gopher://93.184.215.14:70/",
        "https://user:pass@93.184.215.14/hook",
        "https://token@93.184.215.14/hook",
        "https://no-such-host.invalid/hook",
        "not a url",
        "https:///nohost",
        "http://93.184.215.14:99999/",
    ],
)
def test_registration_refuses_urls_webhooks_may_not_reach(buyer_client, url):
    body = _problem(
        buyer_client.post("/api/v1/webhook-endpoints", {"url": url}, format="json"), 400, "validation_error"
    )
    assert list(body["errors"]) == ["url"]
    assert Endpoint.objects.count() == 0


def test_updating_to_a_private_url_is_refused(buyer_client):
    endpoint = buyer_client.post("/api/v1/webhook-endpoints", {"url": PUBLIC_URL}, format="json").json()
    response = buyer_client.patch(
        f"/api/v1/webhook-endpoints/{endpoint['id']}", {"url": "http://169.254.169.254/"}, format="json"
    )
    assert "url" in _problem(response, 400, "validation_error")["errors"]


def test_private_urls_are_accepted_when_the_setting_allows_them(buyer_client, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    response = buyer_client.post("/api/v1/webhook-endpoints", {"url": "http://localhost:9/hook"}, format="json")
    assert response.status_code == 201
    # Scheme and credentials rules hold regardless.
    response = buyer_client.post("/api/v1/webhook-endpoints", {"url": "http://u:p@localhost/"}, format="json")
    _problem(response, 400, "validation_error")


# --- the polling feed ------------------------------------------------------------------------


def test_feed_lists_the_callers_events_in_order_with_the_webhook_ids(make_client, publish):
    alice, bob = make_client("quant"), make_client("buyer")
    alice_events = [publish(alice.account, EVENT, n=n) for n in range(3)]
    bob_event = publish(bob.account, OTHER_EVENT, n=99)
    shared = publish(alice.account, OTHER_EVENT, n=100)
    shared.recipients.create(account=bob.account)

    body = alice.get("/api/v1/events").json()
    assert [e["id"] for e in body["results"]] == [e.public_id for e in [*alice_events, shared]]
    assert body["results"][0] == {
        "id": alice_events[0].public_id,
        "type": EVENT,
        "timestamp": alice_events[0].created_at.isoformat().replace("+00:00", "Z"),
        "data": {"n": 0},
    }
    assert body["next"] is None
    assert body["cursor"] == shared.public_id
    assert [e["id"] for e in bob.get("/api/v1/events").json()["results"]] == [bob_event.public_id, shared.public_id]


@pytest.mark.usefixtures("api_keys_kept")
def test_feed_pages_by_cursor_and_filters_by_type(quant_client, publish, django_assert_num_queries):
    events = [publish(quant_client.account, EVENT if n % 2 else OTHER_EVENT, n=n) for n in range(5)]

    with django_assert_num_queries(3):
        page = quant_client.get("/api/v1/events", {"page_size": 2}).json()
    assert [e["id"] for e in page["results"]] == [e.public_id for e in events[:2]]
    assert f"after={events[1].public_id}" in page["next"]
    page = quant_client.get(page["next"]).json()
    assert [e["id"] for e in page["results"]] == [e.public_id for e in events[2:4]]
    page = quant_client.get(page["next"]).json()
    assert [e["id"] for e in page["results"]] == [events[4].public_id]
    assert page["next"] is None

    # Nothing new yet: an empty page keeps the cursor; a new event shows up after it.
    empty = quant_client.get("/api/v1/events", {"after": page["cursor"]}).json()
    assert empty == {"results": [], "next": None, "cursor": events[4].public_id}
    newer = publish(quant_client.account, EVENT, n=5)
    assert [e["id"] for e in quant_client.get("/api/v1/events", {"after": page["cursor"]}).json()["results"]] == [
        newer.public_id
    ]

    only = quant_client.get("/api/v1/events", {"type": EVENT}).json()["results"]
    assert [e["id"] for e in only] == [events[1].public_id, events[3].public_id, newer.public_id]
    both = quant_client.get(f"/api/v1/events?type={EVENT}&type={OTHER_EVENT}").json()["results"]
    assert len(both) == 6


def test_feed_bounds_the_page_size_and_rejects_bad_input(quant_client, publish, settings):
    settings.API_MAX_PAGE_SIZE = 3
    for n in range(4):
        publish(quant_client.account, n=n)
    assert len(quant_client.get("/api/v1/events", {"page_size": 3}).json()["results"]) == 3
    assert (
        "page_size"
        in _problem(quant_client.get("/api/v1/events", {"page_size": 1000}), 400, "validation_error")["errors"]
    )
    assert (
        "page_size" in _problem(quant_client.get("/api/v1/events", {"page_size": 0}), 400, "validation_error")["errors"]
    )
    assert (
        "after"
        in _problem(quant_client.get("/api/v1/events", {"after": "msg_nope"}), 400, "validation_error")["errors"]
    )
    assert "type" in _problem(quant_client.get("/api/v1/events", {"type": "nope"}), 400, "validation_error")["errors"]


def test_webhooks_api_needs_a_key(anon_client):
    _problem(anon_client.get("/api/v1/webhook-endpoints"), 401, "not_authenticated")
    _problem(anon_client.get("/api/v1/events"), 401, "not_authenticated")
