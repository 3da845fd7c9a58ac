"""The self-service web form: a municipality requests an instance and follows its status.

A request is validated as a whole tenant spec (every problem shown next to its field);
a valid one writes ``tenants/<slug>.yaml`` (for the ops team to review in git), records
the tenant and queues its creation for the worker. The requester gets a status page
guarded by a random token (stored encrypted like every secret).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from importlib import resources
from typing import Annotated, Any

from fastapi import Cookie, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from osp_ops.domain.errors import NotFoundError, OspOpsError, SpecError
from osp_ops.domain.spec import validate_spec
from osp_ops.engine.api import request
from osp_ops.engine.context import Context

STATUS_TOKEN = "status_token"  # noqa: S105 (a secret name, not a value)
CSRF_COOKIE = "osp_csrf"

_env = Environment(
    loader=FileSystemLoader(str(resources.files("osp_ops.web").joinpath("templates"))),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
)


def _page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**values), status_code=status)


def _field_errors(error: SpecError) -> dict[str, list[str]]:
    """Problems keyed by the form field they belong to."""
    fields = {
        "slug": "slug",
        "name": "name",
        "app": "app",
        "hosts": "host",
        "admin.name": "contact_name",
        "admin.email": "contact_email",
        "locales": "locale",
    }
    out: dict[str, list[str]] = {}
    for p in error.problems:
        path = p.location.split(": ", 1)[-1]
        key = next((v for k, v in fields.items() if path.startswith(k)), "form")
        out.setdefault(key, []).append(p.message)
    return out


def create_app(context: Callable[[], Context]) -> FastAPI:
    """The web app; ``context`` gives the engine context (built once by the caller)."""
    app = FastAPI(title="osp-ops", docs_url=None, redoc_url=None)

    def form(values: dict[str, str], errors: dict[str, list[str]], status: int = 200) -> Response:
        token = secrets.token_urlsafe(24)
        ctx = context()
        apps = {name: a.display_name for name, a in ctx.catalog.apps.items()}
        response = _page(
            "request.html",
            status,
            values=values,
            errors=errors,
            csrf=token,
            apps=apps,
            base_domain=ctx.settings.base_domain,
        )
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict")
        return response

    @app.get("/", response_class=HTMLResponse)
    def index() -> Response:
        return form({"app": "openslides", "locale": "fr"}, {})

    @app.post("/request")
    def submit(
        name: Annotated[str, Form()] = "",
        slug: Annotated[str, Form()] = "",
        contact_name: Annotated[str, Form()] = "",
        contact_email: Annotated[str, Form()] = "",
        csrf: Annotated[str, Form()] = "",
        app_name: Annotated[str, Form(alias="app")] = "openslides",
        host: Annotated[str, Form()] = "",
        locale: Annotated[str, Form()] = "fr",
        osp_csrf: Annotated[str | None, Cookie()] = None,
    ) -> Response:
        values = {
            "name": name,
            "slug": slug,
            "contact_name": contact_name,
            "contact_email": contact_email,
            "app": app_name,
            "host": host,
            "locale": locale,
        }
        if not osp_csrf or not hmac.compare_digest(osp_csrf, csrf):
            return form(values, {"form": ["the form expired; please submit it again"]}, 400)
        ctx = context()
        slug = slug.strip().lower()
        try:
            app_entry = ctx.catalog.app(app_name)
            spec = validate_spec(
                {
                    "slug": slug,
                    "name": name.strip(),
                    "app": {"name": app_name, "version": app_entry.latest.version},
                    "hosts": {"primary": host.strip() or f"{slug}.{ctx.settings.base_domain}"},
                    "admin": {"name": contact_name.strip(), "email": contact_email.strip()},
                    "contacts": [
                        {
                            "name": contact_name.strip(),
                            "email": contact_email.strip(),
                            "role": "administrative",
                        }
                    ],
                    "locales": {"default": locale, "available": sorted({locale, "en"})},
                    "platform": {"kind": ctx.settings.default_platform},
                    "labels": {"origin": "web-form"},
                },
                source="request",
                catalog=ctx.catalog,
            )
            if ctx.specs.exists(slug) or ctx.tenants.get(slug) is not None:
                return form(values, {"slug": [f"{slug!r} is already taken"]}, 409)
            ctx.specs.check_against_fleet(spec)
        except SpecError as e:
            return form(values, _field_errors(e), 422)
        except OspOpsError as e:
            return form(values, {"form": [str(e)]}, 422)
        ctx.specs.write(spec)
        request(ctx, "create", spec, requested_by=f"web:{spec.admin.email}")
        ctx.secrets.ensure(slug, STATUS_TOKEN, lambda: secrets.token_urlsafe(24))
        token = ctx.secrets.get(slug, STATUS_TOKEN)
        return RedirectResponse(f"/status/{slug}?token={token}", status_code=303)

    def _authorized(ctx: Context, slug: str, token: str) -> None:
        try:
            expected = ctx.secrets.get(slug, STATUS_TOKEN)
        except NotFoundError:
            raise HTTPException(404, "unknown request") from None
        if not hmac.compare_digest(expected, token):
            raise HTTPException(404, "unknown request")

    def _status(ctx: Context, slug: str) -> dict[str, Any]:
        rec = ctx.tenants.require(slug)
        ops = ctx.operations.recent(tenant=slug, limit=1)
        spec = ctx.specs.load(slug)
        data: dict[str, Any] = {
            "slug": slug,
            "name": spec.name,
            "phase": str(rec.phase),
            "reason": rec.reason,
            "app": rec.app,
            "version": rec.observed_version,
            "url": f"https://{spec.hosts.primary}/" if rec.phase.value == "ready" else None,
        }
        if ops:
            op = ops[0]
            data["operation"] = {
                "kind": op.kind,
                "status": op.status,
                "steps": [{"name": s.name, "status": s.status} for s in op.steps],
            }
        return data

    @app.get("/status/{slug}", response_class=HTMLResponse)
    def status_page(slug: str, token: str = "") -> Response:
        ctx = context()
        _authorized(ctx, slug, token)
        data = _status(ctx, slug)
        return _page(
            "status.html", status=200, s=data, done=data["phase"] in ("ready", "failed", "deleted")
        )

    @app.get("/api/status/{slug}")
    def status_json(slug: str, token: str = "") -> JSONResponse:
        ctx = context()
        _authorized(ctx, slug, token)
        return JSONResponse(_status(ctx, slug))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.middleware("http")
    async def security_headers(req: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(req)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'"
        )
        return response

    return app
