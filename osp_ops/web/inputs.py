"""Reading a request: the posted form, the client's address."""

from __future__ import annotations

from typing import Any

from fastapi import Request


async def form_data(request: Request) -> dict[str, Any]:
    """The posted form as a dict (``locales`` as a list); a body that is no form gives {}."""
    try:
        form = await request.form()
    except Exception:  # malformed multipart or encoding: treated as an empty form
        return {}
    out: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    out["locales"] = [v for v in form.getlist("locales") if isinstance(v, str)]
    return out


def client_ip(request: Request) -> str:
    """The client's address (served directly, or behind a proxy that rewrites it)."""
    return request.client.host if request.client else "unknown"
