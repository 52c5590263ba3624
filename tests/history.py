"""What Ops read on an object's admin History page, and the audit rows behind it."""

from __future__ import annotations

import html
import re
from typing import Any

from django.contrib.admin.utils import quote
from django.test import Client
from django.urls import reverse

from core.audit import audit_entries_for


def admin_history(client: Client, model: str, pk: Any) -> list[list[str]]:
    """The audit rows of an object's History page (``model`` as ``app_model``): [when, who, what, details, why]."""
    response = client.get(reverse(f"admin:{model}_history", args=[quote(pk)]))
    assert response.status_code == 200, response.status_code
    rows = re.findall(r'<tr class="audit-entry">(.*?)</tr>', response.content.decode(), re.S)
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in rows
    ]


def audited(obj: Any) -> list[tuple[str, str, str, str]]:
    """(actor, action, message, reason) of every audit entry of ``obj``, oldest first."""
    return [(e.actor, e.action, e.message, e.reason) for e in audit_entries_for(obj)]
