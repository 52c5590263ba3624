import pytest
from django.core.management import call_command

from deals.models import BuyerAuthorization, Deal

pytestmark = pytest.mark.django_db


def test_seed_posts_one_demo_deal_visible_to_the_demo_buyer_idempotently():
    call_command("seed")
    call_command("seed")

    deal = Deal.objects.get()
    assert deal.seller.ref == "demo-seller"
    assert str(deal.final_price) == "90.0000"
    assert BuyerAuthorization.objects.filter(seller__ref="demo-seller", buyer__ref="demo-buyer").count() == 1
