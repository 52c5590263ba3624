import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def test_api_key_rate_limit_answers_429_with_retry_after(quant_client, make_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "3/min", "anon": "100/min"},
    }
    statuses = [quant_client.get("/api/v1/me").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = quant_client.get("/api/v1/me")
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    # The limit is per key: another caller is not affected.
    assert make_client("quant").get("/api/v1/me").status_code == 200


def test_anonymous_rate_limit_is_per_client_address(anon_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "100/min", "anon": "2/min"},
    }
    statuses = [anon_client.get("/api/v1/datasets", REMOTE_ADDR="203.0.113.7").status_code for _ in range(3)]
    assert statuses[:2] != [429, 429] and statuses[2] == 429
    assert anon_client.get("/api/v1/datasets", REMOTE_ADDR="203.0.113.8").status_code != 429


def test_admin_login_is_throttled_after_repeated_failures(client, settings, django_user_model):
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    django_user_model.objects.create_superuser("ops", "ops@example.com", "right-password-123")
    for _ in range(3):
        response = client.post("/admin/login/", {"username": "ops", "password": "wrong"})
        assert response.status_code == 200
    response = client.post("/admin/login/", {"username": "ops", "password": "right-password-123"})
    assert response.status_code == 429
    assert "Retry-After" in response


def test_admin_login_throttle_counts_every_spelling_of_a_username_together(client, settings, django_user_model):
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    django_user_model.objects.create_superuser("opsx", "ops@example.com", "right-password-123")
    # Spaces, capitals and full-width letters (NFKC folds them) are one username to the throttle.
    for spelling in [" opsx", "OPSX ", "\uff4f\uff50\uff53\uff58"]:
        response = client.post("/admin/login/", {"username": spelling, "password": "wrong"})
        assert response.status_code == 200
    response = client.post("/admin/login/", {"username": "opsx", "password": "right-password-123"})
    assert response.status_code == 429
    # Another username from the same address still has its own budget.
    django_user_model.objects.create_superuser("other", "o@example.com", "right-password-123")
    assert client.post("/admin/login/", {"username": "other", "password": "right-password-123"}).status_code == 302


def test_admin_login_succeeds_below_the_limit(client, django_user_model):
    django_user_model.objects.create_superuser("ops2", "ops@example.com", "right-password-123")
    client.post("/admin/login/", {"username": "ops2", "password": "wrong"})
    response = client.post("/admin/login/?next=/admin/", {"username": "ops2", "password": "right-password-123"})
    assert response.status_code == 302


def test_production_settings_pass_check_deploy_without_warnings():
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "SECURE_HSTS_SECONDS", "SECURE_SSL_REDIRECT"}
    }
    env.update(
        {
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
            "SECRET_KEY": "k3J#pz9!Qw2$Lm8^Xv4&Rt6*Yb1@Nc5%Hd7(Gf0)Ej2-Sa9+Uo3=Ci8",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "backoffice.example.com",
            "SECURE_SSL_REDIRECT": "true",
            "SECURE_HSTS_SECONDS": "31536000",
            "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
            "SECURE_HSTS_PRELOAD": "true",
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_default_settings_do_warn_under_check_deploy():
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused", "SECRET_KEY": "short"}
    env.pop("SECURE_HSTS_SECONDS", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "security.W009" in result.stderr + result.stdout


def test_admin_login_throttle_keys_on_the_client_behind_a_declared_proxy(client, settings, django_user_model):
    settings.ADMIN_LOGIN_MAX_FAILURES = 2
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    django_user_model.objects.create_superuser("ops3", "ops@example.com", "right-password-123")
    for _ in range(2):
        client.post("/admin/login/", {"username": "ops3", "password": "wrong"}, HTTP_X_FORWARDED_FOR="198.51.100.1")
    blocked = client.post(
        "/admin/login/", {"username": "ops3", "password": "right-password-123"}, HTTP_X_FORWARDED_FOR="198.51.100.1"
    )
    assert blocked.status_code == 429
    other_client = client.post(
        "/admin/login/?next=/admin/",
        {"username": "ops3", "password": "right-password-123"},
        HTTP_X_FORWARDED_FOR="198.51.100.2",
    )
    assert other_client.status_code == 302


def test_an_empty_setting_in_the_environment_means_its_default():
    env = {**os.environ, "PRICE_SOURCE": "", "COINCAP_API_KEY": "", "OPS_NOTIFICATION_EMAILS": "", "CACHE_URL": ""}
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.PRICE_SOURCE, s.OPS_NOTIFICATION_EMAILS, s.CACHES['default']['LOCATION'] == s.REDIS_URL)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["synthetic", "[]", "True"]
