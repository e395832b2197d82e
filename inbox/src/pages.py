"""The inbox's HTML pages: small, self-contained (no external assets), readable on a phone, all data escaped."""

from __future__ import annotations

import html
import json
from typing import Any

HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;padding:1rem;background:#f6f7f9;color:#1b1f24}
main{max-width:40rem;margin:0 auto;background:#fff;border:1px solid #d8dde3;border-radius:8px;padding:1rem 1.25rem}
h1{font-size:1.3rem;margin:.2rem 0 1rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}
dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
pre{background:#f0f2f5;padding:.75rem;border-radius:6px;overflow-x:auto;white-space:pre-wrap;overflow-wrap:anywhere}
textarea{width:100%;box-sizing:border-box;min-height:5rem;font:inherit}
.actions{display:flex;gap:.75rem;margin-top:.75rem;flex-wrap:wrap}
button{font:inherit;font-size:1.05rem;padding:.6rem 1.4rem;border-radius:6px;border:1px solid #888;cursor:pointer}
button[value=approve]{background:#1a7f37;color:#fff;border-color:#1a7f37}
button[value=reject]{background:#cf222e;color:#fff;border-color:#cf222e}
.state{font-size:1.1rem;font-weight:600}
"""


def _document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def _summary(item: dict[str, Any]) -> str:
    request = json.dumps(json.loads(item["request"]["S"]), indent=2, ensure_ascii=False)
    return (
        "<dl>"
        f"<dt>Approver</dt><dd>{html.escape(item['approver']['S'])}</dd>"
        f"<dt>Pattern</dt><dd>{html.escape(item['pattern']['S'])}</dd>"
        f"<dt>Open until</dt><dd><time>{html.escape(item['deadline']['S'])}</time></dd>"
        "</dl>"
        f"<h2>Request</h2><pre>{html.escape(request)}</pre>"
    )


def form(item: dict[str, Any]) -> str:
    """The request with its form: a nonce, a comment, and approve and reject buttons."""
    return _document("Approval requested", (
        "<h1>Approval requested</h1>" + _summary(item)
        + '<form method="post">'
        f'<input type="hidden" name="nonce" value="{html.escape(item["nonce"]["S"])}">'
        '<label for="comment">Comment (optional, up to 1,000 characters)</label>'
        '<textarea id="comment" name="comment" maxlength="1000"></textarea>'
        '<div class="actions">'
        '<button type="submit" name="decision" value="approve">Approve</button>'
        '<button type="submit" name="decision" value="reject">Reject</button>'
        "</div></form>"
    ))


def state(item: dict[str, Any] | None, title: str, message: str) -> str:
    """A page that names the request's state (recorded, already answered, decided, expired, an error)."""
    summary = _summary(item) if item is not None else ""
    return _document(title, f"<h1>{html.escape(title)}</h1>"
                            f'<p class="state">{html.escape(message)}</p>{summary}')
