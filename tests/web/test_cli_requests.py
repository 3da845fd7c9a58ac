"""`osp-ops request ...` as the ops team runs it: list, show, approve (spec written and
creation queued, audited with who approved), reject (reason emailed), admin accounts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from osp_ops.engine.context import Context
from tests.fixtures.portal import Inbox
from tests.web.test_portal import EMAIL, click, confirm_link, nothing_queued, submit

pytestmark = pytest.mark.integration


def _cli(
    tmp_path: Path, port: int, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OSP_OPS_DATA_DIR": str(tmp_path / "data"),
        "OSP_OPS_TENANTS_DIR": str(tmp_path / "tenants"),
        "OSP_OPS_BASE_DOMAIN": "participer.example.org",
        "OSP_OPS_PORTAL_SMTP_PORT": str(port),
        "OSP_OPS_ACTOR": "dominique@ops",
    }
    return subprocess.run(
        [sys.executable, "-m", "osp_ops.cli", *args],
        env=env, input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_request_commands(
    client: TestClient, ctx: Context, smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    inbox, port = smtp
    submit(client)
    submit(client, subdomain="lyon", insee="69123", municipality="Ville de Lyon",
           contact_email="dgs@lyon.example.org")  # fmt: skip
    click(client, confirm_link(inbox))
    listed = json.loads(_cli(tmp_path, port, "request", "list", "--json").stdout)
    by_slug = {r["slug"]: r for r in listed}
    assert by_slug["nanterre"]["state"] == "pending"
    assert by_slug["lyon"]["state"] == "unconfirmed"
    shown = _cli(tmp_path, port, "request", "show", by_slug["nanterre"]["id"])
    assert EMAIL in shown.stdout and "Camille Martin" in shown.stdout

    refused = _cli(tmp_path, port, "request", "approve", by_slug["lyon"]["id"])
    assert refused.returncode == 4 and "unconfirmed" in refused.stderr
    assert nothing_queued(ctx)
    done = _cli(tmp_path, port, "request", "approve", by_slug["nanterre"]["id"])
    assert done.returncode == 0, done.stderr
    [op] = ctx.operations.recent()
    assert op.kind == "create" and op.requested_by == "dominique@ops"
    assert ctx.specs.load("nanterre").labels["insee"] == "92050"
    assert [e.actor for e in ctx.audit.entries() if e.action == "portal.approved"] == [
        "dominique@ops"
    ]

    click(client, confirm_link(inbox, "dgs@lyon.example.org"))
    no_reason = _cli(tmp_path, port, "request", "reject", by_slug["lyon"]["id"], "--reason", " ")
    assert no_reason.returncode == 2
    rejected = _cli(tmp_path, port, "request", "reject", by_slug["lyon"]["id"],
                    "--reason", "Lyon a déjà une plateforme.")  # fmt: skip
    assert rejected.returncode == 0, rejected.stderr
    assert "Lyon a déjà une plateforme." in Inbox.body(inbox.to("dgs@lyon.example.org")[-1])

    short = _cli(
        tmp_path, port, "request", "admin-add", "alice", "--password-stdin", stdin="short\n"
    )
    assert short.returncode == 2
    made = _cli(tmp_path, port, "request", "admin-add", "alice", "--password-stdin",
                stdin="correct horse battery staple\n")  # fmt: skip
    assert made.returncode == 0 and "created admin alice" in made.stdout
    assert "alice" in _cli(tmp_path, port, "request", "admin-list").stdout
    assert "removed" in _cli(tmp_path, port, "request", "admin-remove", "alice").stdout
