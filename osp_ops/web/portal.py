"""The portal's flows, shared by the pages, the JSON API and `osp-ops request`.

submit → (email link) confirm → approve | reject. Only ``approve`` writes the tenant
spec and queues its creation, and the audit log records who approved. Every change of
state is emailed to the requester in the language of the request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from osp_ops.domain.errors import IllegalTransitionError, OspOpsError, Problem, SpecError
from osp_ops.domain.maintenance import next_start
from osp_ops.domain.spec import TenantSpec, validate_spec
from osp_ops.engine.api import request as queue_request
from osp_ops.engine.context import Context
from osp_ops.settings import PortalSettings
from osp_ops.store.backups import Backups
from osp_ops.store.db import utcnow
from osp_ops.store.requests import (
    CONFIRM_TTL,
    AdminStore,
    PortalRequest,
    RequestState,
    RequestStore,
)
from osp_ops.web import forms
from osp_ops.web.forms import N_, Errors, Message
from osp_ops.web.i18n import DEFAULT_LANGUAGE, LANGUAGES
from osp_ops.web.mail import Mailer
from osp_ops.web.render import Renderer

log = logging.getLogger(__name__)

# The tenant phase a request follows once approved.
_FOLLOW = {
    "provisioning": RequestState.provisioning,
    "ready": RequestState.ready,
    "failed": RequestState.failed,
}


@dataclass(frozen=True)
class Submitted:
    """A recorded request and the tokens of its two private links (sent by mail)."""

    request: PortalRequest
    confirm_token: str
    access_token: str


class Portal:
    """Portal flows over the engine context, the request store and a mailer."""

    def __init__(
        self,
        ctx: Context,
        settings: PortalSettings,
        *,
        mailer: Mailer,
        renderer: Renderer | None = None,
    ) -> None:
        self.ctx, self.settings, self.mailer = ctx, settings, mailer
        self.renderer = renderer or Renderer()
        self.requests = RequestStore(ctx.db)
        self.admins = AdminStore(ctx.db)

    # --- the form ---------------------------------------------------------------------

    def validate(self, raw: dict[str, Any]) -> tuple[dict[str, Any], Errors]:
        """Every problem of a submitted form at once, by field (the address already taken
        and what the spec itself refuses included)."""
        ctx = self.ctx
        self.requests.expire()  # an expired request no longer holds its address
        clean, errors = forms.validate(
            raw,
            settings=ctx.settings,
            catalog=ctx.catalog,
            consent_version=self.settings.consent_version,
        )
        if errors:
            return clean, errors
        slug = clean["slug"]
        address = "subdomain" if clean["address_kind"] == "subdomain" else "domain"
        if (
            ctx.tenants.get(slug) is not None
            or ctx.specs.exists(slug)
            or self.requests.active_for_slug(slug) is not None
        ):
            errors[address] = [Message(N_("This address is already taken."))]
            return clean, errors
        try:
            ctx.specs.check_against_fleet(self.spec(clean))
        except SpecError as e:
            errors["form"] = [Message(str(p), raw=True) for p in e.problems]
        except OspOpsError as e:
            errors["form"] = [Message(str(e), raw=True)]
        return clean, errors

    def spec(self, data: dict[str, Any]) -> TenantSpec:
        """The tenant spec a request becomes (SpecError listing every problem)."""
        ctx = self.ctx
        return validate_spec(
            forms.spec_data(data, settings=ctx.settings, catalog=ctx.catalog),
            source=f"request {data.get('slug', '?')}",
            catalog=ctx.catalog,
        )

    def submit(self, clean: dict[str, Any], *, ip: str | None, lang: str) -> Submitted:
        """Record an unconfirmed request and email its confirmation link; a request whose
        mail cannot be sent is expired at once (TemporaryError)."""
        data = {k: v for k, v in clean.items() if k != "consent_version"}
        data["lang"] = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        req, confirm, access = self.requests.create(
            slug=clean["slug"],
            email=clean["contact_email"],
            ip=ip,
            data=data,
            consent_version=clean["consent_version"],
        )
        base = self.settings.public_url.rstrip("/")
        try:
            self._mail(
                req,
                "confirm",
                confirm_url=f"{base}/confirm/{confirm}?space={access}",
                space_url=f"{base}/space/{access}",
                hours=int(CONFIRM_TTL.total_seconds() // 3600),
            )
        except OspOpsError:
            self.requests.discard(req.id)
            raise
        return Submitted(req, confirm, access)

    def confirm(self, token: str) -> PortalRequest | None:
        """Consume a confirmation link: the request waits for approval (None when the link
        is unknown, used or expired)."""
        req = self.requests.confirm(token)
        if req is None:
            return None
        self.ctx.audit.append(
            actor=f"portal:{req.id}",
            action="portal.confirmed",
            tenant=req.slug,
            details={"request": req.id, "consent_version": req.consent_version},
        )
        self._notify(req)
        if self.settings.ops_email:
            try:
                self._send(
                    self.settings.ops_email,
                    f"[osp-ops] request {req.id} ({req.slug}) waits for approval",
                    f"osp-ops request show {req.id}\n",
                )
            except OspOpsError as e:
                log.warning("ops mail about request %s not sent: %s", req.id, e)
        return req

    # --- the ops team -----------------------------------------------------------------

    def approve(self, request_id: str, *, actor: str) -> PortalRequest:
        """Write the tenant spec, queue its creation and record who approved."""
        ctx = self.ctx
        req = self.requests.require(request_id)
        if req.state is not RequestState.pending:
            raise IllegalTransitionError(
                f"portal request {request_id} is {req.state}; only a pending request is approved"
            )
        spec = self.spec(req.data)
        if ctx.specs.exists(spec.slug) or ctx.tenants.get(spec.slug) is not None:
            raise IllegalTransitionError(f"tenant {spec.slug!r} exists already; reject the request")
        ctx.specs.check_against_fleet(spec)
        self.requests.move(request_id, RequestState.approved, by=actor, expect=RequestState.pending)
        ctx.specs.write(spec)
        op, _created = queue_request(ctx, "create", spec, requested_by=actor)
        req = self.requests.set_operation(request_id, op.id)
        ctx.audit.append(
            actor=actor,
            action="portal.approved",
            tenant=spec.slug,
            details={"request": request_id, "operation": op.id},
        )
        self._notify(req)
        return req

    def reject(self, request_id: str, *, actor: str, reason: str) -> PortalRequest:
        """Refuse a pending request, email the reason, then delete the personal data."""
        reason = reason.strip()
        if not reason:
            raise SpecError([Problem("reason", "a reason is required")], subject="rejection")
        req = self.requests.move(
            request_id, RequestState.rejected, by=actor, reason=reason, expect=RequestState.pending
        )
        self.ctx.audit.append(
            actor=actor,
            action="portal.rejected",
            tenant=req.slug,
            details={"request": request_id},
        )
        self._notify(req)
        self.requests.forget_personal(request_id)
        return self.requests.require(request_id)

    def expire(self) -> list[str]:
        """Expire unconfirmed requests past 24 h (their personal data is deleted)."""
        return self.requests.expire()

    # --- following a request ----------------------------------------------------------

    def sync(self, req: PortalRequest) -> PortalRequest:
        """Follow the tenant of an approved request (provisioning, ready, failed); each
        change is recorded once and emailed."""
        if req.state not in (RequestState.approved, RequestState.provisioning, RequestState.failed):
            return req
        rec = self.ctx.tenants.get(req.slug)
        target = _FOLLOW.get(str(rec.phase)) if rec else None
        if target is None or target is req.state:
            return req
        try:
            moved = self.requests.move(req.id, target, expect=req.state)
        except IllegalTransitionError:  # another process moved it first
            return self.requests.require(req.id)
        self._notify(moved)
        return moved

    def space(self, req: PortalRequest) -> dict[str, Any]:
        """What the client space shows of a request (no personal data beyond the form)."""
        ctx = self.ctx
        data = req.data
        out: dict[str, Any] = {
            "id": req.id,
            "state": str(req.state),
            "municipality": data.get("municipality", ""),
            "slug": req.slug,
            "host": data.get("host", ""),
            "app": data.get("app", ""),
            "plan": data.get("plan", ""),
            "reason": req.reason if req.state is RequestState.rejected else None,
            "created_at": req.created_at.isoformat(),
            "expires_at": req.expires_at.isoformat() if req.expires_at else None,
            "url": f"https://{data['host']}/" if req.state is RequestState.ready else None,
            "dns": None,
            "steps": [],
            "progress": None,
            "maintenance": None,
            "last_backup": None,
            "last_drill": None,
        }
        if data.get("address_kind") == "domain":
            target = self.settings.dns_target or ctx.settings.base_domain
            out["dns"] = {"name": f"{data['host']}.", "type": "CNAME", "value": f"{target}."}
        if req.operation_id:
            try:
                op = ctx.operations.get(req.operation_id)
            except OspOpsError:
                op = None
            if op is not None:
                out["steps"] = [{"name": s.name, "status": s.status} for s in op.steps]
                done = sum(s.status == "done" for s in op.steps)
                out["progress"] = {"done": done, "total": len(op.steps), "status": op.status}
        if req.state in (RequestState.approved, RequestState.provisioning, RequestState.ready):
            out.update(self._service(req.slug))
        return out

    def _service(self, slug: str) -> dict[str, Any]:
        ctx, out = self.ctx, {}
        try:
            spec = ctx.specs.load(slug)
        except OspOpsError:
            return {}
        window = spec.maintenance_window
        start = next_start(window, spec.time_zone, utcnow())
        out["maintenance"] = {
            "start": start.strftime("%Y-%m-%d %H:%M"),
            "duration_minutes": window.duration_minutes,
            "time_zone": spec.time_zone,
        }
        backups = Backups(ctx.db)
        done = [b for b in backups.for_tenant(slug) if b.status in ("complete", "verified")]
        if done:
            last = max(done, key=lambda b: b.created_at)
            out["last_backup"] = {"at": last.created_at.isoformat(), "status": last.status}
        drills = backups.drills(slug)
        if drills:
            d = max(drills, key=lambda x: x.started_at)
            out["last_drill"] = {"at": d.started_at.isoformat(), "result": d.result}
        return out

    # --- mail -------------------------------------------------------------------------

    def _mail(self, req: PortalRequest, template: str, **values: Any) -> None:
        if not req.email:
            return
        lang = str(req.data.get("lang", DEFAULT_LANGUAGE))
        lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        subject, body = self.renderer.mail(
            lang,
            template,
            r=req,
            state=str(req.state),
            municipality=req.data.get("municipality", ""),
            host=req.data.get("host", ""),
            **values,
        )
        self._send(req.email, subject, body)

    def _notify(self, req: PortalRequest) -> None:
        """Email the request's new state; a mail that cannot be sent is logged (the change
        of state stands, and the client space shows it)."""
        try:
            self._mail(req, "state")
        except OspOpsError as e:
            log.warning("state mail of request %s not sent: %s", req.id, e)

    def _send(self, to: str, subject: str, body: str) -> None:
        self.mailer.send(to=to, subject=subject, body=body)
