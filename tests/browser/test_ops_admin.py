"""An Ops person works the queue in a real browser, and the effect shows over the API and in History."""

import re
from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts import services as account_services
from accounts.models import Role
from catalog.models import Dataset
from demo.seed import catalog_seed
from entitlements import services
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db(transaction=True)


def follow(page, selector: str) -> None:
    """Click what submits a form or follows a link, and wait for the next page."""
    with page.expect_navigation():
        page.click(selector)


def test_ops_work_the_queue_in_a_browser(live_server, page, django_user_model):
    catalog_seed()
    django_user_model.objects.create_superuser("ops-anna", "anna@example.com", "anna-secret-123")
    quant = AccountFactory(ref="jane-q", name="Jane Quantitative Research LLC", role=Role.QUANT)
    _, quant_key = account_services.api_key_create(account=quant, name="test")
    other = AccountFactory(ref="algo-lab", name="Algo Lab", role=Role.QUANT)
    btc, eth = Dataset.objects.get(symbol="BTC"), Dataset.objects.get(symbol="ETH")
    mine = services.access_request_create(
        account=quant, dataset=btc, frequencies=["1h", "1d"], reason="Walk-forward backtest of a mean-reversion model"
    )
    theirs = services.access_request_create(account=other, dataset=eth, frequencies=["1d"], reason="Factor research")

    # Log in: the admin opens on the pending queue.
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "ops-anna")
    page.fill("#id_password", "anna-secret-123")
    follow(page, "input[type=submit]")
    assert page.inner_text("#pending-access-request-count") == "2"
    page.shot("01-index")

    # The queue: reason, account name and waiting time, oldest first, no horizontal scrolling at 1400 px.
    follow(page, "#pending-access-requests caption a")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    first = rows.nth(0).inner_text()
    assert "Jane Quantitative Research LLC" in first and "Walk-forward backtest" in first and "min" in first
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    page.shot("02-queue")

    # The request page: the reason, the account, and one form per decision.
    follow(page, f"#result_list a[href$='/accessrequest/{mine.pk}/change/']")
    assert "Walk-forward backtest" in page.inner_text("#request-reason")
    page.shot("03-request")
    # A 7-day trial on 1h: the days box and one click.
    page.fill("#item-1h input[name=trial_days]", "7")
    follow(page, "#item-1h button:has-text('Trial 1h')")
    assert "as a trial until" in page.inner_text(".messagelist")
    # A refusal with a reason on 1d: type the reason, one click.
    page.fill("#item-1d input[name=reason]", "Daily history is sold out this quarter")
    follow(page, "#item-1d button:has-text('Refuse 1d')")
    assert "Refused" in page.inner_text(".messagelist")
    assert page.locator("#decide form").count() == 0  # nothing left to decide here
    page.shot("04-decided")

    # The bulk action on the queue still works, with a form that says what it decides.
    page.goto(f"{live_server.url}/admin/entitlements/accessrequest/")
    page.check(f"#result_list input[name=_selected_action][value='{theirs.pk}']")
    page.select_option("select[name=action]", "refuse_requests")
    follow(page, "button[name=index]")
    assert f"Request #{theirs.pk} from Algo Lab (algo-lab): ETH 1d" in page.inner_text("#action-targets")
    page.fill("textarea[name=reason]", "ETH daily is not for sale to labs")
    follow(page, "input[name=apply]")
    assert "Refused 1" in page.inner_text(".messagelist")

    # The effect over the API, as the quant sees it.
    api = requests.Session()
    api.headers["Authorization"] = f"Api-Key {quant_key}"
    grants = api.get(f"{live_server.url}/api/v1/entitlements", timeout=10).json()["results"]
    assert [(g["dataset"], g["frequency"]) for g in grants] == [("BTC", "1h")]
    ends = parse_datetime(grants[0]["expires_at"]) - timezone.now()
    assert timedelta(days=6, hours=23) < ends <= timedelta(days=7)
    decided = api.get(f"{live_server.url}/api/v1/access-requests/{mine.pk}", timeout=10).json()
    items = {item["frequency"]: item for item in decided["items"]}
    assert (items["1h"]["status"], items["1d"]["status"]) == ("approved", "refused")
    assert items["1d"]["note"] == "Daily history is sold out this quarter"

    # History keeps who, when and why.
    page.goto(f"{live_server.url}/admin/entitlements/accessrequest/{mine.pk}/change/")
    follow(page, "a.historylink")
    trail = page.inner_text("#audit-trail")
    assert re.search(r"admin:ops-anna\s+approved\s+Approved BTC 1h as a trial until", trail)
    assert re.search(r"admin:ops-anna\s+refused\s+Refused BTC 1d\.\s+Daily history is sold out this quarter", trail)
    assert f"{timezone.now():%Y-%m-%d}" in trail
    page.shot("05-history")
