"""Plugin packages on the board in Chromium: an upload shows what the package
asks for and installs only once approved; an upgrade shows the permissions it
adds and drops; rollback; removal lists the robots it would disable first."""

import os
import re
import shutil
from pathlib import Path

from playwright.sync_api import expect

from test_board import sign_in

PASSWORD = "correct horse battery"


def standard_wasm() -> Path:
    """The standard robots' component, which building the host builds."""
    target = Path(os.environ["ROBOHOST_BIN"]).resolve().parent.parent
    path = target / "plugins/wasm32-wasip2/release/standard.wasm"
    assert path.is_file(), f"{path} is missing: build the host first (bash tests/browser/run does)"
    return path


def pack(host, folder: Path, key: Path, version: str, capabilities: str) -> Path:
    """A signed package `extras` of the standard component, as its publisher
    makes it with the CLI."""
    source = folder / f"extras-{version}"
    source.mkdir()
    shutil.copy(standard_wasm(), source / "standard.wasm")
    (source / "robohost.toml").write_text(
        f"""[package]
name = "extras"
version = "{version}"
publisher = "acme"
description = "Notifications for the sales team"
wit = "0.1.0"

[capabilities]
{capabilities}

[[robots]]
component = "standard.wasm"
codes = ["notify"]
"""
    )
    archive = folder / f"extras-{version}.tar.gz"
    host.robohost("package", "pack", str(source), "--key", str(key), "--output", str(archive))
    return archive


def packages(host, token):
    answer = host.api("GET", "/api/packages", token)
    assert answer.status == 200, answer
    return {p["name"]: p for p in answer.body}


def upload(page, host, archive):
    page.goto(f"{host.url}/packages")
    page.get_by_label(re.compile("Package file")).set_input_files(str(archive))
    page.get_by_role("button", name="Upload").click()


def test_a_package_installs_only_after_its_permissions_are_approved(host, page, tmp_path, screenshot):
    token = host.token("admin")
    key = tmp_path / "acme.key"
    public = host.robohost("package", "keygen", str(key)).strip()
    trust = host.api("PUT", "/api/trust", token, {"publishers": {"acme": public}, "allow_unsigned": False})
    assert trust.status == 200, trust
    first = pack(host, tmp_path, key, "1.0.0", 'host = ["crm-read", "notify"]\nread = ["deal"]')
    host.account("anna", "admin", PASSWORD)
    sign_in(page, host)

    # The upload shows the package, its verified signature and what it
    # asks for, and installs nothing yet.
    upload(page, host, first)
    expect(page.get_by_role("heading", name="extras 1.0.0")).to_be_visible()
    expect(page.locator(".facts")).to_contain_text("verified, signed by acme")
    expect(page.locator(".facts")).to_contain_text("a new package")
    expect(page.locator(".permissions li")).to_have_count(3)
    expect(page.locator('[data-permission="notify"]')).to_contain_text("send employees notifications")
    expect(page.locator('[data-permission="read:deal"]')).to_contain_text("read entities: deal")
    screenshot(page, "package-approval")
    assert packages(host, token) == {}

    # Approved, it is installed with exactly those permissions.
    page.get_by_role("button", name="Approve and install").click()
    expect(page.get_by_role("status")).to_contain_text("Installed extras 1.0.0")
    row = page.locator('tr[data-package="extras"]')
    expect(row).to_contain_text("1.0.0")
    expect(row).to_contain_text("signed, verified")
    assert sorted(packages(host, token)["extras"]["approved"]) == ["crm-read", "notify", "read:deal"]

    # An upgrade that adds a permission and drops another says so, and
    # keeps the old version until approved.
    second = pack(host, tmp_path, key, "1.1.0", 'host = ["notify", "add-comment"]\nwrite = ["deal"]')
    upload(page, host, second)
    expect(page.locator(".facts")).to_contain_text("an upgrade from 1.0.0")
    expect(page.locator('.permissions:not(.dropped) [data-permission="add-comment"] .new')).to_have_text("new")
    expect(page.locator('.permissions:not(.dropped) [data-permission="notify"] .new')).to_have_count(0)
    expect(page.locator('.permissions:not(.dropped) [data-permission="write:deal"] .new')).to_have_text("new")
    expect(page.locator('.dropped [data-permission="read:deal"]')).to_be_visible()
    expect(page.locator('.dropped [data-permission="crm-read"]')).to_be_visible()
    screenshot(page, "package-upgrade")
    assert packages(host, token)["extras"]["version"] == "1.0.0"
    page.get_by_role("button", name="Approve and install").click()
    expect(page.get_by_role("status")).to_contain_text("Installed extras 1.1.0")
    assert packages(host, token)["extras"]["version"] == "1.1.0"

    # Rollback returns to 1.0.0 with what was approved for it.
    page.locator('tr[data-package="extras"]').get_by_role("button", name="Roll back").click()
    expect(page.get_by_role("status")).to_contain_text("Rolled back extras 1.0.0")
    assert sorted(packages(host, token)["extras"]["approved"]) == ["crm-read", "notify", "read:deal"]

    # Removal lists the robot that uses it before anything is removed.
    pipeline = {"kind": "deal", "names": {"en": "Sales"},
                "stages": [{"code": "NEW", "names": {"en": "New"}, "semantic": "in-progress"}]}
    assert host.api("PUT", "/api/pipelines/sales", token, pipeline).status == 200
    robot = {"plugin": "extras", "robot": "notify", "title": "Tell the team",
             "recipient": "responsible", "properties": {"text": "New deal"}}
    assert host.api("POST", "/api/pipelines/sales/stages/NEW/robots", token, robot).status == 201
    page.goto(f"{host.url}/packages")
    page.locator('tr[data-package="extras"]').get_by_role("link", name="Remove").click()
    expect(page.locator(".disabling li")).to_have_count(1)
    expect(page.locator(".disabling li")).to_contain_text("Tell the team")
    expect(page.locator(".disabling li")).to_contain_text("Sales · New")
    assert "extras" in packages(host, token)
    page.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("status")).to_contain_text("Removed extras; robots disabled: 1")
    assert packages(host, token) == {}
    [placed] = host.api("GET", "/api/pipelines/sales/stages/NEW/robots", token).body
    assert placed["disabled"]


def test_an_unsigned_package_is_refused_with_the_reason_and_nothing_installed(host, page, tmp_path):
    token = host.token("admin")
    source = tmp_path / "loose"
    source.mkdir()
    shutil.copy(standard_wasm(), source / "standard.wasm")
    (source / "robohost.toml").write_text(
        '[package]\nname = "loose"\nversion = "0.1.0"\npublisher = "nobody"\nwit = "0.1.0"\n\n'
        '[[robots]]\ncomponent = "standard.wasm"\ncodes = ["notify"]\n'
    )
    archive = tmp_path / "loose.tar.gz"
    host.robohost("package", "pack", str(source), "--output", str(archive))
    host.account("anna", "admin", PASSWORD)
    sign_in(page, host)
    upload(page, host, archive)
    expect(page.get_by_role("alert")).to_contain_text("unsigned")
    expect(page.get_by_role("button", name="Approve and install")).to_have_count(0)
    assert packages(host, token) == {}


def test_a_manager_cannot_reach_the_packages(host, page, tmp_path):
    host.account("max", "manager", PASSWORD)
    sign_in(page, host, name="max")
    expect(page.get_by_role("link", name="Packages")).to_have_count(0)
    answer = page.goto(f"{host.url}/packages")
    assert answer.status == 403
    csrf = page.request.get(f"{host.url}/board").text()
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', csrf).group(1)
    refused = page.request.post(
        f"{host.url}/packages/install", form={"csrf": token, "archive": "", "approve": ""}, max_redirects=0
    )
    assert refused.status == 403
