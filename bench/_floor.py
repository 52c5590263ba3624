"""The floor for ``python -m bench reads``: the thinnest WSGI app that does the same reads
as the product, on the same tables, answering the same JSON and CSV bytes.

Nothing but psycopg, its pool and orjson: per request it looks the API key up by its
prefix and checks its SHA-512 hash (as djangorestframework-api-key's hasher does), then
runs the reads' queries and writes the body. No rate limit, no middleware, no framework.
Served by gunicorn with the product's settings: ``gunicorn bench._floor:application``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode

import orjson
from psycopg_pool import ConnectionPool

from deals.currencies import quantum

Start = Callable[[str, list[tuple[str, str]]], Any]
JSON = "application/json"

pool = ConnectionPool(
    os.environ["DATABASE_URL"],
    min_size=2,
    max_size=int(os.environ.get("DB_POOL_MAX_SIZE", "4")),
    kwargs={"autocommit": True, "options": "-c TimeZone=UTC"},
    open=True,
)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _money(amount: Decimal, currency: str) -> str:
    return str(amount.quantize(quantum(currency)))


def _account(cur: Any, environ: dict[str, Any], role: str) -> int | None:
    header = environ.get("HTTP_AUTHORIZATION", "")
    keyword, _, key = header.partition(" ")
    if keyword.lower() != "api-key" or not key:
        return None
    prefix = key.partition(".")[0]
    row = cur.execute(
        "SELECT k.hashed_key, k.expiry_date, a.id, a.role, a.is_active FROM accounts_accountapikey k "
        "JOIN accounts_account a ON a.id = k.account_id WHERE k.prefix = %s AND NOT k.revoked",
        (prefix,),
    ).fetchone()
    if row is None:
        return None
    hashed, expiry, account_id, account_role, active = row
    expected = "sha512$$" + hashlib.sha512(key.encode()).hexdigest()
    if not hmac.compare_digest(hashed, expected) or not active or account_role != role:
        return None
    if expiry is not None and expiry <= datetime.now(UTC):
        return None
    return int(account_id)


def datasets(cur: Any, environ: dict[str, Any], query: dict[str, str]) -> tuple[bytes, str, list]:
    rows = cur.execute(
        "SELECT d.id, d.symbol, d.name, m.date, trim_scale(m.market_cap_usd)::text, trim_scale(m.price_usd)::text, "
        "trim_scale(m.supply)::text, m.source, m.estimated FROM catalog_dataset d LEFT JOIN LATERAL ("
        "SELECT * FROM pricing_marketcapsnapshot s WHERE s.dataset_id = d.id ORDER BY s.date DESC LIMIT 1"
        ") m ON true ORDER BY d.symbol"
    ).fetchall()
    frequencies: dict[int, list[dict[str, str]]] = {}
    for dataset_id, frequency, mode in cur.execute(
        "SELECT dataset_id, frequency, approval_mode FROM catalog_datasetfrequency ORDER BY id"
    ):
        frequencies.setdefault(dataset_id, []).append({"frequency": frequency, "approval_mode": mode})
    results = [
        {
            "symbol": symbol,
            "name": name,
            "frequencies": frequencies.get(dataset_id, []),
            "latest_market_cap": None
            if day is None
            else {
                "date": day.isoformat(),
                "market_cap_usd": cap,
                "price_usd": price,
                "supply": supply,
                "source": source,
                "estimated": estimated,
            },
        }
        for dataset_id, symbol, name, day, cap, price, supply, source, estimated in rows
    ]
    body = {"count": len(results), "next": None, "previous": None, "results": results}
    return orjson.dumps(body), JSON, []


_DEALS = (
    "SELECT d.id, d.public_id, d.name, a.ref, d.total_price, d.currency, d.discount_type, d.discount_amount, "
    "d.final_price, d.status, d.version, d.created_at, d.updated_at FROM deals_deal d "
    "JOIN accounts_account a ON a.id = d.seller_id "
    "WHERE d.seller_id IN (SELECT seller_id FROM deals_buyerauthorization WHERE buyer_id = %s) "
)


def _deals_wire(cur: Any, rows: list[tuple]) -> list[dict[str, Any]]:
    items: dict[int, list[tuple]] = {}
    for deal_id, ref, name, price in cur.execute(
        "SELECT deal_id, ref, name, price FROM deals_dealitem WHERE deal_id = ANY(%s) ORDER BY deal_id, position",
        ([row[0] for row in rows],),
    ):
        items.setdefault(deal_id, []).append((ref, name, price))
    out = []
    for (
        pk,
        public_id,
        name,
        seller,
        total,
        currency,
        d_type,
        d_amount,
        final,
        status,
        version,
        created,
        updated,
    ) in rows:
        discount = None
        if d_type and d_amount is not None:
            amount = str(d_amount.quantize(Decimal("0.01"))) if d_type == "percentage" else _money(d_amount, currency)
            discount = {"type": d_type, "amount": amount}
        out.append(
            {
                "id": str(public_id),
                "name": name,
                "seller": seller,
                "total_price": _money(total, currency),
                "currency": currency,
                "discount": discount,
                "final_price": _money(final, currency),
                "status": status,
                "items": [
                    {"id": ref, "name": item_name, "price": _money(price, currency)}
                    for ref, item_name, price in items.get(pk, [])
                ],
                "version": version,
                "created_at": _iso(created),
                "updated_at": _iso(updated),
            }
        )
    return out


def deals(cur: Any, environ: dict[str, Any], query: dict[str, str]) -> tuple[bytes, str, list] | None:
    account = _account(cur, environ, "buyer")
    if account is None:
        return None
    size = min(int(query.get("page_size", "100")), 1000)
    rows = cur.execute(_DEALS + "ORDER BY d.updated_at DESC, d.id DESC LIMIT %s", (account, size + 1)).fetchall()
    next_url = None
    if len(rows) > size:
        del rows[size:]
        position = str(rows[-1][12])
        cursor = base64.b64encode(urlencode({"p": position}).encode()).decode()
        params = sorted({**query, "cursor": cursor}.items())
        next_url = f"http://{environ['HTTP_HOST']}{environ['PATH_INFO']}?{urlencode(params)}"
    body = {"next": next_url, "previous": None, "results": _deals_wire(cur, rows)}
    return orjson.dumps(body), JSON, []


def deal(cur: Any, environ: dict[str, Any], query: dict[str, str], deal_id: str) -> tuple[bytes, str, list] | None:
    account = _account(cur, environ, "buyer")
    if account is None:
        return None
    rows = cur.execute(_DEALS + "AND d.public_id = %s", (account, deal_id)).fetchall()
    if not rows:
        return None
    return orjson.dumps(_deals_wire(cur, rows)[0]), JSON, [("ETag", f'"{rows[0][1]}.{rows[0][10]}"')]


def entitlements(cur: Any, environ: dict[str, Any], query: dict[str, str]) -> tuple[bytes, str, list] | None:
    account = _account(cur, environ, "quant")
    if account is None:
        return None
    rows = cur.execute(
        "SELECT g.id, d.symbol, g.frequency, g.starts_at, g.expires_at, i.request_id FROM entitlements_grant g "
        "JOIN catalog_dataset d ON d.id = g.dataset_id LEFT JOIN entitlements_accessrequestitem i ON i.id = g.item_id "
        "WHERE g.account_id = %s AND g.status = 'active' AND g.starts_at <= now() "
        "AND (g.expires_at IS NULL OR g.expires_at > now()) ORDER BY g.id DESC LIMIT 101",
        (account,),
    ).fetchall()
    results = [
        {
            "id": pk,
            "dataset": symbol,
            "frequency": frequency,
            "starts_at": _iso(starts),
            "expires_at": _iso(expires),
            "request_id": request_id,
        }
        for pk, symbol, frequency, starts, expires, request_id in rows[:100]
    ]
    return orjson.dumps({"next": None, "previous": None, "results": results}), JSON, []


def prices(cur: Any, environ: dict[str, Any], query: dict[str, str], symbol: str) -> tuple[bytes, str, list] | None:
    account = _account(cur, environ, "quant")
    if account is None:
        return None
    frequency = query["frequency"]
    start = datetime.fromisoformat(query["start"])
    end = datetime.fromisoformat(query["end"])
    size = int(query.get("page_size", "1000"))
    dataset = cur.execute(
        "SELECT d.id, d.symbol FROM catalog_dataset d WHERE d.symbol = %s AND EXISTS ("
        "SELECT 1 FROM entitlements_grant g WHERE g.account_id = %s AND g.dataset_id = d.id AND g.frequency = %s "
        "AND g.status = 'active' AND g.starts_at <= now() AND (g.expires_at IS NULL OR g.expires_at > now()))",
        (symbol.upper(), account, frequency),
    ).fetchone()
    if dataset is None:
        return None
    dataset_id, symbol = dataset
    covered = cur.execute(
        'SELECT 1 FROM pricing_pricecoverage WHERE dataset_id = %s AND frequency = %s AND start <= %s AND "end" >= %s',
        (dataset_id, frequency, start, end),
    ).fetchone()
    if covered is None:
        return None
    rows = cur.execute(
        "SELECT to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
        "trim_scale(price_usd)::text, source FROM pricing_pricepoint WHERE dataset_id = %s AND frequency = %s "
        "AND timestamp >= %s AND timestamp < %s ORDER BY timestamp LIMIT %s",
        (dataset_id, frequency, start, end, size + 1),
    ).fetchall()
    state = cur.execute(
        "SELECT last_success_at, last_point_at FROM pricing_pricesyncstate WHERE dataset_id = %s AND frequency = %s",
        (dataset_id, frequency),
    ).fetchone()
    del rows[size:]
    source = ",".join(sorted({row[2] for row in rows}))
    headers = [("X-Price-Source", source), ("X-Data-Complete", "true")]
    if state and state[0]:
        headers.append(("X-Data-As-Of", _iso(state[0]) or ""))
    if query.get("format") == "csv":
        lines = ["timestamp,price_usd\n", *(f"{ts},{price}\n" for ts, price, _ in rows)]
        headers.append(("Content-Disposition", f'inline; filename="{symbol}-{frequency}.csv"'))
        return "".join(lines).encode(), "text/csv; charset=utf-8", headers
    body = {
        "dataset": symbol,
        "frequency": frequency,
        "source": source,
        "start": _iso(start),
        "end": _iso(end),
        "data_as_of": _iso(state[0]) if state else None,
        "latest_point_at": _iso(state[1]) if state else None,
        "complete": True,
        "count": len(rows),
        "results": [{"timestamp": ts, "price_usd": price} for ts, price, _ in rows],
        "next": None,
    }
    return orjson.dumps(body), JSON, headers


_ROUTES: list[tuple[re.Pattern[str], Callable[..., tuple[bytes, str, list] | None]]] = [
    (re.compile(r"^/api/v1/datasets$"), datasets),
    (re.compile(r"^/api/v1/deals$"), deals),
    (re.compile(r"^/api/v1/deals/([0-9a-f-]{36})$"), deal),
    (re.compile(r"^/api/v1/entitlements$"), entitlements),
    (re.compile(r"^/api/v1/datasets/([A-Za-z0-9]+)/prices$"), prices),
]


def application(environ: dict[str, Any], start_response: Start) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    query = {name: values[-1] for name, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
    for pattern, view in _ROUTES:
        match = pattern.match(path)
        if match:
            with pool.connection() as conn, conn.cursor() as cur:
                answer = view(cur, environ, query, *match.groups())
            if answer is None:
                break
            body, content_type, headers = answer
            start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers])
            return [body]
    body = b'{"detail":"not found"}'
    start_response("404 Not Found", [("Content-Type", JSON), ("Content-Length", str(len(body)))])
    return [body]
