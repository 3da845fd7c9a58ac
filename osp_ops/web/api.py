"""The JSON API of the portal (OpenAPI at /api/v1/openapi.json): the same flows as the
pages. Bodies are JSON only, so a cross-site HTML form cannot post them; admin calls
carry ``Authorization: Bearer <session token>`` from ``POST /api/v1/admin/session``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from osp_ops.apps.loader import default_apps
from osp_ops.domain.errors import NotFoundError, OspOpsError
from osp_ops.web.admin import admin_actor
from osp_ops.web.auth import verify_password
from osp_ops.web.forms import Errors
from osp_ops.web.inputs import client_ip

if TYPE_CHECKING:
    from osp_ops.web.site import Web

_S = Field(default="", max_length=1000)


class RequestIn(BaseModel):
    """A request, as the form has it."""

    model_config = ConfigDict(extra="forbid")
    municipality: str = _S
    insee: str = _S
    address_kind: str = Field("subdomain", max_length=20)
    subdomain: str = _S
    domain: str = _S
    contact_name: str = _S
    contact_role: str = _S
    contact_email: str = _S
    contact_phone: str = _S
    app: str = Field(default_factory=lambda: default_apps().default_name, max_length=40)
    plan: str = Field("small", max_length=20)
    locales: list[str] = Field(default_factory=lambda: ["fr"], max_length=10)
    consent: bool = False
    consent_version: str = Field("", max_length=40)
    lang: str = Field("fr", max_length=5, description="Language of the emails: fr or en.")


class Token(BaseModel):
    """A token from an emailed link."""

    model_config = ConfigDict(extra="forbid")
    token: str = Field(max_length=200)


class Login(BaseModel):
    """An admin's credentials."""

    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=60)
    password: str = Field(max_length=1000)


class Reason(BaseModel):
    """Why a request is rejected (emailed to the requester)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class Accepted(BaseModel):
    """A request and where it stands."""

    id: str
    state: str


def _errors(web: Web, errors: Errors) -> dict[str, list[str]]:
    _ = web.renderer.translator("en")
    return {
        name: [m.text if m.raw else _(m.text, **m.params) for m in messages]
        for name, messages in errors.items()
    }


def _too_many(wait: int) -> JSONResponse:
    return JSONResponse(
        {"detail": "too many requests"}, status_code=429, headers={"Retry-After": str(wait)}
    )


def router(web: Web) -> APIRouter:
    """The /api/v1 routes."""
    portal = web.portal
    r = APIRouter(prefix="/api/v1", tags=["portal"])

    def admin_user(authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        return portal.admins.session_user(authorization.removeprefix("Bearer ").strip())

    @r.post("/requests", status_code=202, response_model=Accepted)
    def create(body: RequestIn, request: Request) -> Any:
        """Record a request and email its confirmation link (nothing is queued)."""
        ip = client_ip(request)
        wait = web.posts.hit(ip)
        if wait is not None:
            return _too_many(wait)
        raw = body.model_dump()
        raw["consent"] = "yes" if body.consent else ""
        clean, errors = portal.validate(raw)
        if errors:
            return JSONResponse({"errors": _errors(web, errors)}, status_code=422)
        wait = web.count_request(ip, clean["contact_email"])
        if wait is not None:
            return _too_many(wait)
        try:
            done = portal.submit(clean, ip=ip, lang=body.lang)
        except OspOpsError:
            return JSONResponse({"detail": "confirmation email not sent"}, status_code=503)
        return Accepted(id=done.request.id, state=str(done.request.state))

    @r.post("/confirm", response_model=Accepted)
    def confirm(body: Token, request: Request) -> Any:
        """Consume a confirmation token (404 when unknown, used or expired)."""
        wait = web.posts.hit(client_ip(request))
        if wait is not None:
            return _too_many(wait)
        req = portal.confirm(body.token)
        if req is None:
            return JSONResponse({"detail": "link not valid"}, status_code=404)
        return Accepted(id=req.id, state=str(req.state))

    @r.get("/space/{token}")
    def space(token: str) -> Any:
        """The client space of the request this private token belongs to."""
        req = portal.requests.by_access(token)
        if req is None:
            return JSONResponse({"detail": "link not valid"}, status_code=404)
        return portal.space(portal.sync(req))

    @r.post("/admin/session")
    async def session(body: Login, request: Request) -> Any:
        """Sign in: a session token for the Authorization header (rate-limited)."""
        wait = web.logins.hit(f"ip:{client_ip(request)}") or web.logins.hit(f"user:{body.username}")
        if wait is not None:
            return _too_many(wait)
        stored = await run_in_threadpool(portal.admins.password_hash, body.username)
        if not await run_in_threadpool(verify_password, stored, body.password):
            return JSONResponse({"detail": "wrong user name or password"}, status_code=401)
        return {"token": await run_in_threadpool(portal.admins.open_session, body.username)}

    @r.get("/admin/requests")
    def requests(authorization: str | None = Header(default=None)) -> Any:
        """Every request, newest first (admin)."""
        if admin_user(authorization) is None:
            return JSONResponse({"detail": "sign in first"}, status_code=401)
        portal.expire()
        return [portal.sync(x).to_json() for x in portal.requests.recent()]

    @r.post("/admin/requests/{request_id}/approve", response_model=Accepted)
    def approve(request_id: str, authorization: str | None = Header(default=None)) -> Any:
        """Approve: write the tenant spec and queue its creation (admin)."""
        user = admin_user(authorization)
        if user is None:
            return JSONResponse({"detail": "sign in first"}, status_code=401)
        try:
            req = portal.approve(request_id, actor=admin_actor(user))
        except NotFoundError:
            return JSONResponse({"detail": "no such request"}, status_code=404)
        except OspOpsError as e:
            return JSONResponse({"detail": str(e)}, status_code=409)
        return Accepted(id=req.id, state=str(req.state))

    @r.post("/admin/requests/{request_id}/reject", response_model=Accepted)
    def reject(
        request_id: str, body: Reason, authorization: str | None = Header(default=None)
    ) -> Any:
        """Reject with a reason, emailed to the requester (admin)."""
        user = admin_user(authorization)
        if user is None:
            return JSONResponse({"detail": "sign in first"}, status_code=401)
        try:
            req = portal.reject(request_id, actor=admin_actor(user), reason=body.reason)
        except NotFoundError:
            return JSONResponse({"detail": "no such request"}, status_code=404)
        except OspOpsError as e:
            return JSONResponse({"detail": str(e)}, status_code=409)
        return Accepted(id=req.id, state=str(req.state))

    return r
