"""What the dataset admin page shows about pricing: a 90-day price chart, the market-cap
history and the sync status of each frequency."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.utils import timezone

from catalog.models import Dataset
from pricing import selectors
from pricing.charts import line_chart

CHART_DAYS = 90
# The spacing each frequency's points are expected at: a wider gap is drawn as a gap.
CHART_STEPS = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "1mo": timedelta(days=31)}
MARKET_CAP_ROWS = 30


def dataset_pricing_context(*, dataset: Dataset) -> dict[str, Any]:
    now = timezone.now()
    frequency, rows = selectors.price_chart_points(dataset=dataset, days=CHART_DAYS, now=now)
    points = [(moment, price) for moment, price, _ in rows]
    sources = sorted({source for _, _, source in rows})
    snapshots = list(selectors.market_cap_list(dataset=dataset).order_by("-date")[:CHART_DAYS])
    caps = [(s.date, s.market_cap_usd) for s in reversed(snapshots)]
    offered = [f.frequency for f in dataset.frequencies.all()]
    states = {s.frequency: s for s in selectors.sync_states_for(dataset=dataset)}
    sync_rows = [
        {"frequency": freq, "state": states.get(freq), "offered": freq in offered}
        for freq in [*offered, *sorted(set(states) - set(offered))]
    ]
    cap_points = [(datetime.combine(day, time(0), tzinfo=UTC), value) for day, value in caps]
    return {
        "pricing_chart": line_chart(
            points,
            title=f"{dataset.symbol} {frequency} USD price, last {CHART_DAYS} days",
            step=CHART_STEPS.get(frequency),
        ),
        "pricing_chart_frequency": frequency,
        "pricing_chart_sources": sources,
        "pricing_chart_days": CHART_DAYS,
        "pricing_market_cap_chart": line_chart(
            cap_points, title=f"{dataset.symbol} market cap (USD)", step=timedelta(days=1)
        ),
        "pricing_market_caps": [
            {
                "date": s.date,
                "market_cap_usd": selectors.decimal_text(s.market_cap_usd),
                "price_usd": selectors.decimal_text(s.price_usd),
                "supply": selectors.decimal_text(s.supply),
                "source": s.source,
                "estimated": s.estimated,
            }
            for s in snapshots[:MARKET_CAP_ROWS]
        ],
        "pricing_sync_rows": sync_rows,
    }
