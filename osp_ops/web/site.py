"""What every portal route shares: the portal flows, the renderer, the rate limits,
and the pages every route may answer with (403, 404, 429)."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from osp_ops.web.forms import N_
from osp_ops.web.i18n import LANGUAGES, negotiate
from osp_ops.web.portal import Portal
from osp_ops.web.security import CSRF_COOKIE, RateLimiter, new_csrf_token

LANG_COOKIE = "osp_lang"


class Web:
    """What every route shares: the portal, the renderer, the limits."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.renderer = portal.renderer
        s = portal.settings
        self.posts = RateLimiter(s.posts_per_ip_per_hour, 3600)
        self.per_ip = RateLimiter(s.requests_per_ip_per_hour, 3600)
        self.per_email = RateLimiter(s.requests_per_email_per_hour, 3600)
        self.logins = RateLimiter(s.logins_per_15_minutes, 900)
        self._requests_lock = threading.Lock()

    def count_request(self, ip: str, email: str) -> int | None:
        """Count a request against its address's and its email's limits; the seconds to
        wait instead when either is reached (then neither counts it)."""
        with self._requests_lock:  # both checked, then both counted, in one step
            wait = self.per_ip.retry_after(ip) or self.per_email.retry_after(email)
            if wait is None:
                self.per_ip.hit(ip)
                self.per_email.hit(email)
            return wait

    def lang(self, request: Request) -> str:
        """The page language: ?lang=, the switcher's cookie, Accept-Language."""
        chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
        return negotiate(request.headers.get("accept-language"), chosen)

    def csrf_token(self, request: Request) -> str:
        """The client's CSRF token (a new one when it has none)."""
        token = request.cookies.get(CSRF_COOKIE, "")
        return token if 20 <= len(token) <= 100 and token.isascii() else new_csrf_token()

    def page(
        self,
        request: Request,
        name: str,
        *,
        status: int = 200,
        csrf: str | None = None,
        **values: Any,
    ) -> HTMLResponse:
        """A rendered page; sets the CSRF cookie when given and the language cookie when
        the switcher chose one."""
        lang = self.lang(request)
        html = self.renderer.render(lang, name, path=request.url.path, csrf=csrf or "", **values)
        response = HTMLResponse(html, status_code=status)
        secure = self.portal.settings.secure_cookies
        if csrf:
            response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=secure)
        if request.query_params.get("lang") in LANGUAGES:
            response.set_cookie(
                LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", secure=secure
            )
        return response

    def message(
        self, request: Request, heading: str, *paragraphs: str, status: int = 200,
        link: tuple[str, str] | None = None, headers: dict[str, str] | None = None,
    ) -> HTMLResponse:  # fmt: skip
        """A page of a heading and paragraphs (msgids, translated here)."""
        _ = self.renderer.translator(self.lang(request))
        response = self.page(
            request,
            "message.html",
            status=status,
            heading=_(heading),
            paragraphs=[_(p) for p in paragraphs],
            link=(link[0], _(link[1])) if link else None,
        )
        response.headers.update(headers or {})
        return response

    def forbidden(self, request: Request) -> HTMLResponse:
        """403: a form without its CSRF token, or with a wrong one."""
        return self.message(
            request,
            N_("This form has expired"),
            N_("Go back, reload the page and submit the form again."),
            status=403,
        )

    def too_many(self, request: Request, wait: int) -> HTMLResponse:
        """429 with Retry-After."""
        return self.message(
            request,
            N_("Too many attempts"),
            N_("Please wait a while before trying again."),
            status=429,
            headers={"Retry-After": str(wait)},
        )

    def not_found(self, request: Request) -> HTMLResponse:
        """404 for unknown, used, expired and forged links alike."""
        return self.message(
            request,
            N_("This link is not valid"),
            N_("It may have expired (links last 24 hours), been used already, or be incomplete."),
            status=404,
            link=("/", N_("Make a new request")),
        )
