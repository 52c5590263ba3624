from django.db import transaction

from catalog.models import Dataset, DatasetFrequency, Frequency

CATALOG = [
    {
        "symbol": "BTC",
        "name": "Bitcoin",
        "coincap_id": "bitcoin",
        "frequencies": [Frequency.HOUR, Frequency.DAY, Frequency.MONTH],
    },
    {"symbol": "ETH", "name": "Ethereum", "coincap_id": "ethereum", "frequencies": [Frequency.DAY]},
]


@transaction.atomic
def catalog_seed() -> list[str]:
    """Ensure the sold catalog exists exactly as listed; existing approval modes are kept."""
    created = []
    for entry in CATALOG:
        dataset, made = Dataset.objects.get_or_create(
            symbol=entry["symbol"], defaults={"name": entry["name"], "coincap_id": entry["coincap_id"]}
        )
        if made:
            created.append(dataset.symbol)
        for frequency in entry["frequencies"]:
            _, made = DatasetFrequency.objects.get_or_create(dataset=dataset, frequency=frequency)
            if made:
                created.append(f"{dataset.symbol} {frequency}")
    return created
