"""Ops edit datasets and their frequencies in the admin through the catalog services: each change is
audited with who made it, shows in the dataset's History, and the public catalog serves it at once."""

import pytest
from django.test import Client

from catalog.models import ApprovalMode, Dataset, DatasetFrequency
from core.models import AuditEntry
from tests.history import admin_history, audited

pytestmark = pytest.mark.django_db

ADD = "/admin/catalog/dataset/add/"


def _form(dataset: Dataset | None, rows: list[dict[str, str]], **fields: str) -> dict[str, str]:
    """The dataset change form as the browser posts it, with one inline row per frequency."""
    initial = [row for row in rows if row.get("id")]
    form = {
        "symbol": dataset.symbol if dataset else "",
        "name": dataset.name if dataset else "",
        "coincap_id": dataset.coincap_id if dataset else "",
        "frequencies-TOTAL_FORMS": str(len(rows)),
        "frequencies-INITIAL_FORMS": str(len(initial)),
        "frequencies-MIN_NUM_FORMS": "0",
        "frequencies-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for n, row in enumerate(rows):
        form.update({f"frequencies-{n}-{key}": value for key, value in row.items()})
        if dataset is not None:
            form[f"frequencies-{n}-dataset"] = str(dataset.pk)
    return form


def _rows(dataset: Dataset, **approval_modes: str) -> list[dict[str, str]]:
    return [
        {
            "id": str(f.pk),
            "frequency": f.frequency,
            "approval_mode": approval_modes.get(f"f{f.frequency}", f.approval_mode),
        }
        for f in dataset.frequencies.order_by("id")
    ]


def _change(client: Client, dataset: Dataset, rows: list[dict[str, str]], **fields: str) -> None:
    response = client.post(f"/admin/catalog/dataset/{dataset.pk}/change/", _form(dataset, rows, **fields))
    assert response.status_code == 302, response.content.decode()[-3000:]


def test_a_dataset_added_with_a_frequency_is_audited(admin_client, admin_user, anon_client):
    response = admin_client.post(
        ADD,
        _form(
            None,
            [{"frequency": "1d", "approval_mode": "auto_approve"}],
            symbol="SOL",
            name="Solana",
            coincap_id="solana",
        ),
    )
    assert response.status_code == 302, response.content.decode()[-3000:]

    dataset = Dataset.objects.get(symbol="SOL")
    assert list(dataset.frequencies.values_list("frequency", "approval_mode")) == [("1d", "auto_approve")]
    admin = f"admin:{admin_user.username}"
    assert audited(dataset) == [
        (admin, "created", "SOL (Solana), CoinCap id 'solana'.", ""),
        (admin, "frequency added", "SOL 1d, approval mode auto_approve.", ""),
    ]
    assert anon_client.get("/api/v1/datasets/SOL").json()["frequencies"] == [
        {"frequency": "1d", "approval_mode": "auto_approve"}
    ]


def test_changing_a_frequency_approval_mode_goes_through_the_service_and_shows_in_history(
    admin_client, admin_user, anon_client, catalog
):
    btc = Dataset.objects.get(symbol="BTC")
    assert anon_client.get("/api/v1/datasets/BTC").json()["frequencies"][0] == {
        "frequency": "1h",
        "approval_mode": "manual",
    }

    _change(admin_client, btc, _rows(btc, f1h=ApprovalMode.AUTO_APPROVE))
    _change(admin_client, btc, _rows(btc))  # saved again unchanged: nothing written, nothing audited

    assert DatasetFrequency.objects.get(dataset=btc, frequency="1h").approval_mode == ApprovalMode.AUTO_APPROVE
    admin = f"admin:{admin_user.username}"
    assert audited(btc) == [(admin, "frequency changed", "BTC 1h: approval mode manual -> auto_approve.", "")]
    assert [row[1:4] for row in admin_history(admin_client, "catalog_dataset", btc.pk)] == [
        [admin, "frequency changed", "BTC 1h: approval mode manual -> auto_approve."]
    ]
    assert anon_client.get("/api/v1/datasets/BTC").json()["frequencies"][0] == {
        "frequency": "1h",
        "approval_mode": "auto_approve",
    }


def test_renaming_a_dataset_and_removing_a_frequency_are_audited(admin_client, admin_user, catalog):
    btc = Dataset.objects.get(symbol="BTC")
    rows = _rows(btc)
    monthly = next(row for row in rows if row["frequency"] == "1mo")
    monthly["DELETE"] = "on"

    _change(admin_client, btc, rows, name="Bitcoin Core")

    admin = f"admin:{admin_user.username}"
    assert not btc.frequencies.filter(frequency="1mo").exists()
    assert audited(btc) == [
        (admin, "changed", "name 'Bitcoin' -> 'Bitcoin Core'.", ""),
        (admin, "frequency removed", "BTC 1mo, approval mode manual.", ""),
    ]


def test_a_dataset_deleted_in_the_admin_is_audited(admin_client, admin_user):
    admin_client.post(ADD, _form(None, [], symbol="DOGE", name="Dogecoin", coincap_id="dogecoin"))
    doge = Dataset.objects.get(symbol="DOGE")

    response = admin_client.post(f"/admin/catalog/dataset/{doge.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Dataset.objects.filter(symbol="DOGE").exists()
    assert AuditEntry.objects.filter(object_id=str(doge.pk), action="deleted").values_list(
        "actor", "message"
    ).get() == (
        f"admin:{admin_user.username}",
        "DOGE (Dogecoin).",
    )
