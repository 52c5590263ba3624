"""Keep credentials out of log output.

No code path logs an API key, a webhook signing secret or an ``Authorization``
header on purpose; this filter is the net under that rule for what nobody planned
(an exception message quoting a header, a library logging a request). It sits on
every handler of the logging configuration, so Django, gunicorn's application
logs and Celery workers (which keep that configuration) all write redacted lines.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

_PATTERNS = [
    # "Api-Key <prefix>.<secret>" as sent in the Authorization header.
    (re.compile(r"(Api-Key\s+)[^\s'\",;]+", re.IGNORECASE), rf"\g<1>{REDACTED}"),
    (re.compile(r"(Bearer\s+)[^\s'\",;]+", re.IGNORECASE), rf"\g<1>{REDACTED}"),
    # Standard Webhooks signing secrets.
    (re.compile(r"whsec_[A-Za-z0-9+/=_-]+"), f"whsec_{REDACTED}"),
    # Any Authorization header or META entry with whatever scheme: "Authorization: x", 'HTTP_AUTHORIZATION': 'x'.
    (
        re.compile(r"""((?:HTTP_)?Authorization['"]?\s*[:=]\s*['"]?)(?!\[redacted\])[^'"\r\n,}]+""", re.IGNORECASE),
        rf"\g<1>{REDACTED}",
    ),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Rewrites a record's message, exception text and stack so no credential reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let the handler report it as usual
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
