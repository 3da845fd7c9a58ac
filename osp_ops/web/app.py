"""The self-service portal: a municipality requests an instance, confirms its email,
the ops team approves, the city follows its request in a private client space.

Pages are server-rendered (jinja2, autoescaped) in French or English and need no
JavaScript. Every form carries a CSRF token (a missing or wrong one gets 403); the
request form has a honeypot and rate limits per address and per email (429 with
Retry-After). Nothing is queued before the ops team approves (``portal.Portal``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from osp_ops.apps.loader import default_apps
from osp_ops.domain.errors import OspOpsError
from osp_ops.domain.plans import PlanName
from osp_ops.engine.context import Context
from osp_ops.settings import PortalSettings
from osp_ops.web import admin, api
from osp_ops.web.forms import LOCALE_NAMES, N_, Errors, Message
from osp_ops.web.inputs import client_ip, form_data
from osp_ops.web.mail import Mailer, SmtpMailer
from osp_ops.web.portal import Portal
from osp_ops.web.render import Renderer
from osp_ops.web.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    HEADERS,
    HONEYPOT_FIELD,
    csrf_ok,
)
from osp_ops.web.site import Web

PLAN_NAMES = {"small": N_("Small"), "medium": N_("Medium"), "large": N_("Large")}
_CSS = resources.files("osp_ops.web").joinpath("static/portal.css").read_text("utf-8")


def create_app(
    context: Callable[[], Context],
    *,
    settings: PortalSettings | None = None,
    mailer: Mailer | None = None,
) -> FastAPI:
    """The portal; ``context`` gives the engine context (built once by the caller), and
    its settings the portal's unless ``settings`` are given."""
    ctx = context()
    settings = settings or ctx.settings.portal
    portal = Portal(ctx, settings, mailer=mailer or SmtpMailer(settings), renderer=Renderer())
    web = Web(portal)
    app = FastAPI(
        title="osp-ops portal",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.web = web

    def form_page(
        request: Request, values: dict[str, Any], errors: Errors, status: int = 200
    ) -> HTMLResponse:
        _ = web.renderer.translator(web.lang(request))
        return web.page(
            request,
            "request.html",
            status=status,
            csrf=web.csrf_token(request),
            values=values,
            errors=errors,
            apps={n: a.display_name for n, a in ctx.catalog.apps.items()},
            plans={p.value: _(PLAN_NAMES.get(p.value, p.value)) for p in PlanName},
            locales=LOCALE_NAMES,
            base_domain=ctx.settings.base_domain,
            consent_version=settings.consent_version,
        )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> Response:
        lang = web.lang(request)
        app_name = default_apps().default_name
        return form_page(request, {"app": app_name, "plan": "small", "locales": [lang]}, {})

    @app.post("/request", response_class=HTMLResponse, include_in_schema=False)
    async def submit(request: Request) -> Response:
        ip = client_ip(request)
        raw = await form_data(request)
        if not csrf_ok(request.cookies.get(CSRF_COOKIE), raw.get(CSRF_FIELD)):
            return web.forbidden(request)
        wait = web.posts.hit(ip)
        if wait is not None:
            return web.too_many(request, wait)
        if raw.get(HONEYPOT_FIELD):  # a robot: it is told what a person would be
            return RedirectResponse("/sent", status_code=303)
        clean, errors = await run_in_threadpool(portal.validate, raw)
        if errors:
            values = {k: v for k, v in raw.items() if k not in (CSRF_FIELD, HONEYPOT_FIELD)}
            return form_page(request, values, errors, 422)
        wait = web.count_request(ip, clean["contact_email"])
        if wait is not None:
            return web.too_many(request, wait)
        try:
            await run_in_threadpool(portal.submit, clean, ip=ip, lang=web.lang(request))
        except OspOpsError:
            errors = {
                "form": [
                    Message(N_("We could not send the confirmation email; please try again later."))
                ]
            }
            return form_page(request, raw, errors, 503)
        return RedirectResponse(f"/sent?lang={web.lang(request)}", status_code=303)

    @app.get("/sent", response_class=HTMLResponse, include_in_schema=False)
    def sent(request: Request) -> Response:
        return web.message(
            request,
            N_("Check your email"),
            N_(
                "We sent you a link to confirm the request. It is valid for 24 hours; nothing happens before you open it."
            ),
        )

    @app.get("/confirm/{token}", response_class=HTMLResponse, include_in_schema=False)
    def confirm_page(request: Request, token: str, space: str = "") -> Response:
        if not portal.requests.confirmable(token):
            return web.not_found(request)
        return web.page(
            request, "confirm.html", csrf=web.csrf_token(request), token=token, space=space
        )

    @app.post("/confirm/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def confirm(request: Request, token: str) -> Response:
        raw = await form_data(request)
        if not csrf_ok(request.cookies.get(CSRF_COOKIE), raw.get(CSRF_FIELD)):
            return web.forbidden(request)
        wait = web.posts.hit(client_ip(request))
        if wait is not None:
            return web.too_many(request, wait)
        req = await run_in_threadpool(portal.confirm, token)
        if req is None:
            return web.not_found(request)
        space = raw.get("space", "")
        owner = portal.requests.by_access(space) if isinstance(space, str) and space else None
        if owner is not None and owner.id == req.id:
            return RedirectResponse(f"/space/{space}", status_code=303)
        return web.message(
            request,
            N_("Request confirmed"),
            N_("The operations team reviews it; you are told by email of each step."),
        )

    @app.get("/space/{token}", response_class=HTMLResponse, include_in_schema=False)
    def space_page(request: Request, token: str) -> Response:
        req = portal.requests.by_access(token)
        if req is None:
            return web.not_found(request)
        return web.page(request, "space.html", s=portal.space(portal.sync(req)))

    @app.get("/static/portal.css", include_in_schema=False)
    def css() -> Response:
        return Response(_CSS, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    admin.register(app, web)
    app.include_router(api.router(web))

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if settings.secure_cookies:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        return response

    return app
