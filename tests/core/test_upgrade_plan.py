"""`upgrade plan` and `upgrade run` with a broken neighbour: a tenant whose spec names an
unknown version (or whose path the catalog refuses) is a refused row in the plan and in
--json, is skipped by `upgrade run --all` (which still upgrades the others and then
exits non-zero naming it), and `upgrade run <it>` is one Error line. The plan shows
every intermediate version and each hop's one-time tasks. Real CLI, fake platform."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.cli import Result, Sandbox, Zygote

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    yield z
    z.close()


def _set_version(box: Sandbox, slug: str, old: str, new: str) -> None:
    path = box.root / "tenants" / f"{slug}.yaml"
    text = path.read_text()
    assert f"version: {old}\n" in text
    path.write_text(text.replace(f"version: {old}\n", f"version: {new}\n"))


def _error_line(r: Result) -> str:
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, r.stderr
    assert "Traceback" not in r.stderr
    return errors[0]


@pytest.fixture(scope="module")
def box(zygote: Zygote, tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    """lyon (0.27.7) asks for 0.28.6, paris asks for an unknown version, nice runs
    0.28.4 and asks for 0.27.7 (a downgrade), rennes is up to date."""
    box = Sandbox(tmp_path_factory.mktemp("plan"), zygote=zygote)
    for slug, version in (("lyon", "0.27.7"), ("paris", "0.28.4"), ("nice", "0.28.4")):
        r = box.run("tenant", "create", slug, "--app", "decidim", "--version", version, "--yes")
        assert r.rc == 0, r.stderr
    r = box.run("tenant", "create", "rennes", "--app", "openslides", "--version", "3.3", "--yes")
    assert r.rc == 0, r.stderr
    _set_version(box, "lyon", "0.27.7", "0.28.6")
    _set_version(box, "paris", "0.28.4", "0.99.0")
    _set_version(box, "nice", "0.28.4", "0.27.7")
    return box


def test_plan_json_reports_the_broken_tenants_and_plans_the_others(box: Sandbox) -> None:
    r = box.run("upgrade", "plan", "--json")
    assert r.rc == 0, r.stderr
    data = json.loads(r.stdout)
    plans = {p["tenant"]: p for p in data["plans"]}
    refused = {x["tenant"]: x["error"] for x in data["refused"]}
    assert set(plans) == {"lyon", "rennes"}
    assert set(refused) == {"paris", "nice"}
    assert "'0.99.0' is not in the catalog" in refused["paris"]
    assert "paris.yaml: app.version" in refused["paris"]
    assert "cannot be upgraded from 0.28.4 to 0.27.7" in refused["nice"]

    lyon = plans["lyon"]
    assert (lyon["current"], lyon["target"], lyon["path"]) == (
        "0.27.7",
        "0.28.6",
        ["0.28.4", "0.28.6"],
    )
    assert [(h["from"], h["to"]) for h in lyon["hops"]] == [
        ("0.27.7", "0.28.4"),
        ("0.28.4", "0.28.6"),
    ]
    first, second = lyon["hops"]
    commands = [t["command"][-1] for t in first["tasks"]]
    assert commands[0] == "decidim:upgrade:migrate_wysiwyg_content"
    assert "decidim:upgrade:fix_short_urls" in commands
    assert first["tasks"][0] == {
        "command": ["bundle", "exec", "rails", "decidim:upgrade:migrate_wysiwyg_content"],
        "version": "0.28.0",
        "rerunnable": False,
        "description": "Content migration for the new rich text editor",
    }
    assert second["tasks"] == []  # a patch release inside 0.28
    assert plans["rennes"]["path"] == [] and plans["rennes"]["hops"] == []


def test_plan_table_has_a_row_per_tenant_and_the_tasks_of_each_hop(box: Sandbox) -> None:
    # A process of its own: the width is read when the console is made.
    r = box.run_process("upgrade", "plan", COLUMNS="400")
    assert r.rc == 0, r.stderr
    rows: dict[str, str] = {}
    for line in r.stdout.splitlines():
        if line[:1].isalpha():
            rows.setdefault(line.split()[0], line)  # the table comes before the tasks
    assert "0.27.7 → 0.28.4 → 0.28.6" in rows["lyon"]
    assert "refused: invalid tenant spec" in rows["paris"]
    assert "refused:" in rows["nice"] and "up to date" in rows["rennes"]
    assert "lyon 0.27.7 → 0.28.4:" in r.stdout
    assert "decidim:upgrade:migrate_wysiwyg_content  [0.28.0]" in r.stdout
    assert "(not rerunnable)" in r.stdout


def test_run_of_the_broken_tenant_is_one_error_line(box: Sandbox) -> None:
    r = box.run("upgrade", "run", "paris")
    assert r.rc == 2
    assert "'0.99.0' is not in the catalog" in _error_line(r)
    r = box.run("upgrade", "run", "nice")
    assert r.rc == 2
    assert "cannot be upgraded from 0.28.4 to 0.27.7" in _error_line(r)


def test_run_all_upgrades_the_others_then_names_the_skipped(box: Sandbox) -> None:
    r = box.run("upgrade", "run", "--all")
    assert r.rc == 2, r.stderr
    assert "upgrade lyon: succeeded (0.27.7 → 0.28.6)" in r.stdout
    assert "paris: skipped:" in r.stdout and "nice: skipped:" in r.stdout
    assert "upgrade of some tenants: 2 problems" in _error_line(r)  # listed below it
    assert "paris: skipped" in r.stderr and "nice: skipped" in r.stderr
    assert "lyon" not in r.stderr
    data = json.loads(box.run("upgrade", "plan", "--json").stdout)
    lyon = next(p for p in data["plans"] if p["tenant"] == "lyon")
    assert (lyon["current"], lyon["path"]) == ("0.28.6", [])
    # The broken specs were never touched.
    assert "version: 0.99.0\n" in Path(box.root / "tenants" / "paris.yaml").read_text()


def test_history_and_tenant_show_list_the_one_time_task_runs(box: Sandbox) -> None:
    data = json.loads(box.run("upgrade", "history", "lyon", "--json").stdout)
    runs = data["task_runs"]
    assert len(runs) == 7 and {r["status"] for r in runs} == {"succeeded"}
    assert {(r["from"], r["to"]) for r in runs} == {("0.27.7", "0.28.4")}
    wysiwyg = next(r for r in runs if r["command"].endswith("migrate_wysiwyg_content"))
    assert (wysiwyg["task_version"], wysiwyg["rerunnable"]) == ("0.28.0", False)
    assert wysiwyg["started_at"] and wysiwyg["finished_at"] and wysiwyg["output"]
    r = box.run_process("upgrade", "history", "lyon", COLUMNS="300")
    assert r.rc == 0, r.stderr
    assert "decidim:upgrade:fix_short_urls [0.28.0]" in r.stdout and "7 task runs" in r.stdout
    show = json.loads(box.run("tenant", "show", "lyon", "--json").stdout)
    assert len(show["task_runs"]) == 7
    r = box.run_process("tenant", "show", "lyon", COLUMNS="300")
    assert "recent one-time upgrade tasks" in r.stdout
    assert "recent one-time upgrade tasks" not in box.run("tenant", "show", "rennes").stdout
    r = box.run("upgrade", "history", "lyn")
    assert r.rc == 3 and "no tenant 'lyn'" in _error_line(r)
