"""A pipeline's entities in Chromium: the kanban with each stage's count, and
an entity's page with its fields, its timeline (each line with its time and
who or what caused it) and its runs."""

import re

from playwright.sync_api import expect

from test_board import sign_in
from test_runs import wait_for

PIPELINE = {
    "kind": "deal",
    "names": {"en": "Sales"},
    "stages": [
        {"code": "NEW", "names": {"en": "New"}, "semantic": "in-progress"},
        {"code": "OFFER", "names": {"en": "Offer sent"}, "semantic": "in-progress"},
        {"code": "WON", "names": {"en": "Won"}, "semantic": "success"},
    ],
}

COMMENT = {"plugin": "standard", "robot": "comment", "title": "Note the offer",
           "properties": {"text": "Offer sent for {=Document.TITLE}"}}


def test_the_kanban_and_an_entitys_page(host, page, screenshot):
    token = host.token("admin")
    assert host.api("PUT", "/api/pipelines/sales", token, PIPELINE).status == 200
    assert host.api("POST", "/api/pipelines/sales/stages/OFFER/robots", token, COMMENT).status == 201
    assert host.api("PUT", "/api/users/1", token, {"id": 1, "name": "Olga"}).status == 200
    deals = []
    for title in ("Pumps", "Valves", "Gears"):
        made = host.api("POST", "/api/entities", token, {
            "kind": "deal", "pipeline": "sales", "responsible": 1,
            "fields": {"TITLE": title, "OPPORTUNITY": {"money": "5000.00 RUB"}},
        })
        assert made.status == 201, made
        deals.append(made.body["id"])
    pumps = deals[0]
    # A manager's token bound to Olga: the move records her as its author.
    olgas = host.robohost("token", "create", "--name", "olga's phone", "--role", "manager", "--user", "1").strip()
    moved = host.api("POST", f"/api/entities/deal/{pumps}/move", olgas, {"stage": "OFFER"})
    assert moved.status == 200, moved
    wait_for(host, token, f"/api/runs?entity=deal:{pumps}",
             lambda runs: runs and runs[0]["status"] == "succeeded", "the comment robot's run")

    host.account("mike", "manager", "manager password")
    sign_in(page, host, name="mike", password="manager password")
    page.goto(f"{host.url}/entities/sales")
    expect(page.locator('section.stage[data-stage="NEW"] .count')).to_have_text("2")
    expect(page.locator('section.stage[data-stage="OFFER"] .count')).to_have_text("1")
    expect(page.locator('section.stage[data-stage="WON"] .count')).to_have_text("0")
    card = page.locator(f'[data-entity="deal:{pumps}"]')
    expect(card).to_contain_text("Pumps")
    expect(card).to_contain_text("5000.00 RUB")
    expect(card).to_contain_text("Olga")
    screenshot(page, "kanban")

    card.click()
    expect(page).to_have_url(re.compile(rf"/entities/deal/{pumps}$"))
    expect(page.get_by_role("heading", name=re.compile("Pumps"))).to_be_visible()
    expect(page.locator(".facts")).to_contain_text("Sales · Offer sent")
    expect(page.locator(".facts")).to_contain_text("Olga")
    lines = page.locator("table.timeline tbody tr")
    expect(lines.first).to_contain_text("Created")
    # Made with the test's token, bound to no user; moved by the manager's.
    expect(lines.first).to_contain_text("API token browser test")
    moved_by = page.locator("table.timeline tr", has_text="Entered Offer sent")
    expect(moved_by).to_contain_text("Olga (via token olga's phone)")
    expect(page.locator("table.timeline")).to_contain_text("Entered Offer sent (from New)")
    comment = page.locator("table.timeline tr", has_text="Offer sent for Pumps")
    expect(comment).to_contain_text(re.compile(r"robot, run #\d+"))
    # Every line has its time, in the portal's time zone (UTC here).
    for at in page.locator("table.timeline tbody tr td:first-child").all_inner_texts():
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", at), at
    expect(page.locator("table.runs tr.run")).to_have_count(1)
    expect(page.locator("table.runs tr.run")).to_contain_text("Note the offer")
    screenshot(page, "entity")

    # The comment's author links to the run that wrote it.
    comment.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))


def test_an_integrator_may_not_read_entities(host, page):
    token = host.token("admin")
    assert host.api("PUT", "/api/pipelines/sales", token, PIPELINE).status == 200
    host.account("ian", "integrator", "integrator password")
    sign_in(page, host, name="ian", password="integrator password")
    assert page.goto(f"{host.url}/entities/sales").status == 403
    assert page.goto(f"{host.url}/entities/deal/1").status == 403
