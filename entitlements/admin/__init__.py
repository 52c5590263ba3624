"""The Ops back office for entitlements: the pending queue first, decisions with a reason, grants with revoke and extend.

Actions only parse a form and call the services, so the admin and the API share every rule;
a decision that lost a race against another Ops shows as an error message, never a silent change.

Importing this package registers the model admins (``requests`` and ``grants``); ``forms``,
``filters`` and ``actions`` hold what they share.
"""

from entitlements.admin.filters import GrantStatusFilter, ItemStatusFilter, RequestFrequencyFilter, RequestStatusFilter
from entitlements.admin.forms import FIELD_LABELS, DecisionForm, ExtendForm, ReasonForm, TrialForm, problem_text
from entitlements.admin.grants import GrantAddForm, GrantAdmin, GrantChangeInline
from entitlements.admin.requests import AccessRequestAdmin, AccessRequestItemAdmin

__all__ = [
    "FIELD_LABELS",
    "AccessRequestAdmin",
    "AccessRequestItemAdmin",
    "DecisionForm",
    "ExtendForm",
    "GrantAddForm",
    "GrantAdmin",
    "GrantChangeInline",
    "GrantStatusFilter",
    "ItemStatusFilter",
    "ReasonForm",
    "RequestFrequencyFilter",
    "RequestStatusFilter",
    "TrialForm",
    "problem_text",
]
