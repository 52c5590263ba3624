"""API keys, signing secrets and Authorization headers never reach the logs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from core.redaction import RedactSecretsFilter, redact
from tests.factories import GrantFactory
from tests.security.conftest import PUBLIC_URL


def _secret_parts(key: str) -> list[str]:
    """The whole key and the part after the public prefix: neither may be logged."""
    return [key, key.partition(".")[2]]


def _logged_text(caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        if record.exc_text:
            parts.append(record.exc_text)
    return "\n".join(parts)


def test_requests_with_a_key_through_error_paths_log_neither_key_nor_secret(make_client, catalog, caplog, settings):
    caplog.set_level(logging.DEBUG)
    quant = make_client("quant")
    buyer = make_client("buyer")
    GrantFactory(account=quant.account, dataset__symbol="BTC", frequency="1d")
    created = buyer.post("/api/v1/webhook-endpoints", {"url": PUBLIC_URL}, format="json")
    assert created.status_code == 201
    signing_secret = created.json()["secret"]
    assert signing_secret.startswith("whsec_")

    prefix = quant.key.partition(".")[0]
    wrong_secret = APIClient()
    wrong_secret.credentials(HTTP_AUTHORIZATION=f"Api-Key {prefix}.not-the-secret-at-all")
    assert wrong_secret.get("/api/v1/me").status_code == 401
    assert quant.get("/api/v1/deals").status_code == 403
    assert quant.get("/api/v1/access-requests/999999").status_code == 404
    bad_body = buyer.post("/api/v1/webhook-endpoints", {"url": f"ftp://x/{signing_secret}"}, format="json")
    assert bad_body.status_code == 400

    # A server error with a traceback: a misconfigured price source fails inside the view.
    settings.PRICE_SOURCE = "misconfigured"
    failing = APIClient(raise_request_exception=False)
    failing.credentials(HTTP_AUTHORIZATION=f"Api-Key {quant.key}")
    response = failing.get("/api/v1/datasets/BTC/prices", {"frequency": "1d"})
    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"

    logged = _logged_text(caplog)
    assert "Internal Server Error: /api/v1/datasets/BTC/prices" in logged
    assert "misconfigured" in logged  # the traceback was captured
    for secret in [*_secret_parts(quant.key), *_secret_parts(buyer.key), signing_secret, "not-the-secret-at-all"]:
        assert secret not in logged


@pytest.fixture
def configured_output() -> Iterator[io.StringIO]:
    """What the configured handlers (settings.LOGGING) write, captured."""
    handlers = [h for h in logging.getLogger().handlers if any(isinstance(f, RedactSecretsFilter) for f in h.filters)]
    assert handlers, "settings.LOGGING installs no redacting handler"
    stream = io.StringIO()
    previous = [h.setStream(stream) for h in handlers]  # type: ignore[attr-defined]
    try:
        yield stream
    finally:
        for handler, old in zip(handlers, previous, strict=True):
            handler.setStream(old)  # type: ignore[attr-defined]


def test_every_configured_handler_redacts(configured_output):
    logger = logging.getLogger("tests.redaction")
    logger.warning("header %s", "Authorization: Api-Key AbCd1234.sEcReTpArT")
    logger.warning("meta %r", {"HTTP_AUTHORIZATION": "Bearer tok3n-value", "x": 1})
    logger.warning("signing with whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    try:
        raise ValueError("bad header: Api-Key ZyXw9876.AnotherSecret")
    except ValueError:
        logger.exception("failed")
    output = configured_output.getvalue()
    for secret in ("sEcReTpArT", "AbCd1234", "tok3n-value", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "AnotherSecret"):
        assert secret not in output
    assert "header Authorization: [redacted]" in output
    assert "whsec_[redacted]" in output
    assert "ValueError: bad header: Api-Key [redacted]" in output
    assert "'x': 1" in output  # the rest of the line stays


def test_sql_debug_logging_does_not_write_a_signing_secret(buyer_client, configured_output, settings):
    # Someone turns SQL logging on to debug: the INSERT carries the new endpoint's secret.
    sql_logger = logging.getLogger("django.db.backends")
    level = sql_logger.level
    sql_logger.setLevel(logging.DEBUG)
    try:
        with CaptureQueriesContext(connection):
            response = buyer_client.post("/api/v1/webhook-endpoints", {"url": PUBLIC_URL}, format="json")
    finally:
        sql_logger.setLevel(level)
    secret = response.json()["secret"]
    output = configured_output.getvalue()
    assert "INSERT INTO" in output
    assert "whsec_[redacted]" in output  # it was there, and it was redacted
    assert secret not in output
    assert secret.removeprefix("whsec_") not in output


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Api-Key abc.def", "Api-Key [redacted]"),
        ("api-key abc.def, next", "api-key [redacted], next"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: [redacted]"),
        ("{'HTTP_AUTHORIZATION': 'Api-Key a.b'}", "{'HTTP_AUTHORIZATION': '[redacted]'}"),
        ("whsec_abc+/=", "whsec_[redacted]"),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_redact(line, expected):
    assert redact(line) == expected
