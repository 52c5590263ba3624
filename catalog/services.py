"""Writes of the catalog: datasets and the frequencies they are sold at, each audited with its actor.

A frequency's changes are recorded on its dataset, whose admin History shows them.
"""

from __future__ import annotations

from django.db import transaction

from catalog.models import Dataset, DatasetFrequency
from core.actors import Actor
from core.audit import audit_log

_DATASET_FIELDS = ("symbol", "name", "coincap_id")


@transaction.atomic
def dataset_create(*, symbol: str, name: str, coincap_id: str = "", actor: Actor) -> Dataset:
    """Add a dataset to the catalog; it is sold at no frequency until one is added."""
    dataset = Dataset.objects.create(symbol=symbol, name=name, coincap_id=coincap_id)
    audit_log(obj=dataset, action="created", actor=actor, message=f"{symbol} ({name}), CoinCap id {coincap_id!r}.")
    return dataset


@transaction.atomic
def dataset_update(*, dataset: Dataset, actor: Actor, **fields: str) -> Dataset:
    """Change a dataset's symbol, name or CoinCap id; only a real change is written and audited."""
    changes = []
    for field in _DATASET_FIELDS:
        if field in fields and fields[field] != getattr(dataset, field):
            changes.append(f"{field} {getattr(dataset, field)!r} -> {fields[field]!r}")
            setattr(dataset, field, fields[field])
    if changes:
        dataset.save(update_fields=[f for f in _DATASET_FIELDS if f in fields])
        audit_log(obj=dataset, action="changed", actor=actor, message="; ".join(changes) + ".")
    return dataset


@transaction.atomic
def dataset_delete(*, dataset: Dataset, actor: Actor) -> None:
    """Remove a dataset with its frequencies and stored prices (one with grants or requests is protected)."""
    audit_log(obj=dataset, action="deleted", actor=actor, message=f"{dataset.symbol} ({dataset.name}).")
    dataset.delete()


@transaction.atomic
def dataset_frequency_add(*, dataset: Dataset, frequency: str, approval_mode: str, actor: Actor) -> DatasetFrequency:
    """Sell ``dataset`` at ``frequency``, its access requests decided by ``approval_mode``."""
    offered = DatasetFrequency.objects.create(dataset=dataset, frequency=frequency, approval_mode=approval_mode)
    audit_log(
        obj=dataset,
        action="frequency added",
        actor=actor,
        message=f"{dataset.symbol} {frequency}, approval mode {approval_mode}.",
    )
    return offered


@transaction.atomic
def dataset_frequency_update(
    *, dataset_frequency: DatasetFrequency, frequency: str, approval_mode: str, actor: Actor
) -> DatasetFrequency:
    """Change how a frequency's access requests are decided (or which frequency it is); audited on the dataset."""
    offered = DatasetFrequency.objects.select_related("dataset").select_for_update().get(pk=dataset_frequency.pk)
    changes = []
    if frequency != offered.frequency:
        changes.append(f"frequency {offered.frequency} -> {frequency}")
    if approval_mode != offered.approval_mode:
        changes.append(f"approval mode {offered.approval_mode} -> {approval_mode}")
    if changes:
        label = offered.frequency
        offered.frequency, offered.approval_mode = frequency, approval_mode
        offered.save(update_fields=["frequency", "approval_mode"])
        audit_log(
            obj=offered.dataset,
            action="frequency changed",
            actor=actor,
            message=f"{offered.dataset.symbol} {label}: {'; '.join(changes)}.",
        )
    return offered


@transaction.atomic
def dataset_frequency_remove(*, dataset_frequency: DatasetFrequency, actor: Actor) -> None:
    """Stop selling a dataset at a frequency; grants already made are not touched."""
    dataset = dataset_frequency.dataset
    audit_log(
        obj=dataset,
        action="frequency removed",
        actor=actor,
        message=f"{dataset.symbol} {dataset_frequency.frequency}, approval mode {dataset_frequency.approval_mode}.",
    )
    dataset_frequency.delete()
