"""The ops team's pages: sign-in (argon2 passwords, rate-limited), the list of
requests, approve and reject. Accounts are made with `osp-ops request admin-add`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from osp_ops.domain.errors import OspOpsError
from osp_ops.store.requests import SESSION_TTL
from osp_ops.web.auth import verify_password
from osp_ops.web.forms import N_, Message
from osp_ops.web.inputs import client_ip, form_data
from osp_ops.web.security import CSRF_COOKIE, CSRF_FIELD, csrf_ok

if TYPE_CHECKING:
    from osp_ops.web.site import Web

SESSION_COOKIE = "osp_admin"


def admin_actor(username: str) -> str:
    """How the audit log names an admin of the portal."""
    return f"portal-admin:{username}"


def register(app: FastAPI, web: Web) -> None:
    """Add the admin routes to ``app``."""
    portal = web.portal

    def user_of(request: Request) -> str | None:
        token = request.cookies.get(SESSION_COOKIE)
        return portal.admins.session_user(token) if token else None

    def to_login() -> Response:
        return RedirectResponse("/admin/login", status_code=303)

    def login_page(request: Request, values: dict[str, str], errors: dict[str, list[Message]],
                   status: int = 200) -> Response:  # fmt: skip
        return web.page(
            request, "admin_login.html", status=status, csrf=web.csrf_token(request),
            values=values, errors=errors,
        )  # fmt: skip

    @app.get("/admin/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request) -> Response:
        return login_page(request, {}, {})

    @app.post("/admin/login", response_class=HTMLResponse, include_in_schema=False)
    async def login(request: Request) -> Response:
        raw = await form_data(request)
        if not csrf_ok(request.cookies.get(CSRF_COOKIE), raw.get(CSRF_FIELD)):
            return web.forbidden(request)
        username = str(raw.get("username", ""))[:60]
        password = str(raw.get("password", ""))[:1000]
        wait = web.logins.hit(f"ip:{client_ip(request)}") or web.logins.hit(f"user:{username}")
        if wait is not None:
            return web.too_many(request, wait)
        stored = await run_in_threadpool(portal.admins.password_hash, username)
        if not await run_in_threadpool(verify_password, stored, password):
            errors = {"password": [Message(N_("Wrong user name or password."))]}
            return login_page(request, {"username": username}, errors, 401)
        token = await run_in_threadpool(portal.admins.open_session, username)
        response = RedirectResponse("/admin", status_code=303)
        response.set_cookie(
            SESSION_COOKIE, token, httponly=True, samesite="strict",
            secure=portal.settings.secure_cookies, max_age=int(SESSION_TTL.total_seconds()),
        )  # fmt: skip
        return response

    @app.post("/admin/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        raw = await form_data(request)
        if not csrf_ok(request.cookies.get(CSRF_COOKIE), raw.get(CSRF_FIELD)):
            return web.forbidden(request)
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            portal.admins.close_session(token)
        response = to_login()
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/admin", response_class=HTMLResponse, include_in_schema=False)
    def requests_page(request: Request) -> Response:
        user = user_of(request)
        if user is None:
            return to_login()
        portal.expire()
        reqs = [portal.sync(r) for r in portal.requests.recent()]
        return web.page(
            request, "admin_list.html", csrf=web.csrf_token(request), user=user, requests=reqs
        )

    def detail(request: Request, request_id: str, errors: dict[str, list[Message]],
               status: int = 200) -> Response:  # fmt: skip
        req = portal.requests.get(request_id)
        if req is None:
            return web.not_found(request)
        return web.page(
            request, "admin_request.html", status=status, csrf=web.csrf_token(request),
            r=portal.sync(req), errors=errors,
        )  # fmt: skip

    @app.get("/admin/requests/{request_id}", response_class=HTMLResponse, include_in_schema=False)
    def request_page(request: Request, request_id: str) -> Response:
        if user_of(request) is None:
            return to_login()
        return detail(request, request_id, {})

    @app.post("/admin/requests/{request_id}/{verb}", include_in_schema=False)
    async def decide(request: Request, request_id: str, verb: str) -> Response:
        raw = await form_data(request)
        if not csrf_ok(request.cookies.get(CSRF_COOKIE), raw.get(CSRF_FIELD)):
            return web.forbidden(request)
        user = user_of(request)
        if user is None:
            return to_login()
        if verb not in ("approve", "reject") or portal.requests.get(request_id) is None:
            return web.not_found(request)
        try:
            if verb == "approve":
                await run_in_threadpool(portal.approve, request_id, actor=admin_actor(user))
            else:
                reason = str(raw.get("reason", "")).strip()
                if not reason:
                    errors = {"reason": [Message(N_("This field is required."))]}
                    return detail(request, request_id, errors, 422)
                await run_in_threadpool(
                    portal.reject, request_id, actor=admin_actor(user), reason=reason[:2000]
                )
        except OspOpsError as e:
            return detail(request, request_id, {"form": [Message(str(e), raw=True)]}, 409)
        return RedirectResponse(f"/admin/requests/{request_id}", status_code=303)
