import pytest
from django.core.management import call_command

from catalog.models import Dataset, DatasetFrequency

pytestmark = pytest.mark.django_db


def test_dataset_list_is_public_and_exactly_the_catalog(anon_client, catalog, django_assert_num_queries):
    with django_assert_num_queries(3):
        response = anon_client.get("/api/v1/datasets")
    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    shape = {d["symbol"]: (d["name"], [f["frequency"] for f in d["frequencies"]]) for d in body["results"]}
    assert shape == {"BTC": ("Bitcoin", ["1h", "1d", "1mo"]), "ETH": ("Ethereum", ["1d"])}


def test_dataset_detail_case_insensitive(anon_client, catalog):
    response = anon_client.get("/api/v1/datasets/eth")
    assert response.status_code == 200
    assert response.json()["symbol"] == "ETH"
    assert response.json()["frequencies"] == [{"frequency": "1d", "approval_mode": "manual"}]


def test_unknown_dataset_is_404_problem(anon_client, catalog):
    response = anon_client.get("/api/v1/datasets/DOGE")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


def test_seed_is_idempotent(capsys):
    call_command("seed")
    first = capsys.readouterr().out
    assert "API key" in first
    call_command("seed")
    second = capsys.readouterr().out
    assert "API key" not in second and "created" not in second
    assert Dataset.objects.count() == 2
    assert DatasetFrequency.objects.count() == 4
    assert set(DatasetFrequency.objects.values_list("approval_mode", flat=True)) == {"manual"}


def test_seed_creates_superuser_from_environment(monkeypatch, django_user_model):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "s3cret-pass")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "root@example.com")
    call_command("seed", "--no-demo")
    user = django_user_model.objects.get(username="root")
    assert user.is_superuser and user.check_password("s3cret-pass")
