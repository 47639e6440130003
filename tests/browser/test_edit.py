"""Building automation on the board in Chromium: a pipeline, its stages, robots
from their property forms and a trigger, all by clicking; a bad property
shown by its field with nothing saved; and a manager kept from every page
and action that changes the portal."""

import re
import time

from playwright.sync_api import expect

from test_board import sign_in

PASSWORD = "correct horse battery"


def robots_at(host, token, stage):
    answer = host.api("GET", f"/api/pipelines/sales/stages/{stage}/robots", token)
    assert answer.status == 200, answer
    return answer.body


def stage(page, code):
    return page.locator(f'section.stage[data-stage="{code}"]')


def test_an_admin_builds_a_pipeline_with_two_robots_and_a_trigger_on_the_board(host, page, screenshot):
    token = host.token("admin")
    host.account("anna", "admin", PASSWORD)
    sign_in(page, host)

    # The pipeline, with its first stage.
    page.get_by_role("link", name="New pipeline").click()
    page.get_by_label("Code", exact=True).fill("sales")
    page.get_by_label("Entity kind").select_option("deal")
    page.get_by_label("Name").first.fill("Sales")
    page.get_by_label("Stage code").fill("NEW")
    page.get_by_label("Name").nth(1).fill("New")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/board/sales$"))
    expect(page.get_by_role("heading", name="Sales")).to_be_visible()

    # A final stage after it.
    page.get_by_role("link", name="Add a stage").click()
    page.get_by_label("Stage code").fill("WON")
    page.get_by_label("Name").fill("Won")
    page.get_by_label("Kind of stage").select_option("success")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/board/sales$"))
    expect(page.locator("section.stage h2")).to_have_text(["New", "Won"])
    expect(page.locator('section.stage[data-stage="WON"]')).to_have_class(re.compile(r"\bsuccess\b"))

    # The first robot: a notification to the responsible, its text built
    # with the insert help.
    stage(page, "NEW").get_by_role("link", name="Add a robot").click()
    page.get_by_label("Robot").select_option("standard/notify")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name=re.compile("Add a robot"))).to_be_visible()
    text = page.locator('[data-field="p.text"] textarea')
    text.fill("New deal: ")
    page.locator('button.insert[data-insert="{=Document.TITLE}"]').click()
    expect(text).to_have_value("New deal: {=Document.TITLE}")
    page.get_by_label("To whom").select_option("responsible")
    screenshot(page, "robot-form")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/board/sales$"))

    # The second: a task two hours later, after the first.
    stage(page, "NEW").get_by_role("link", name="Add a robot").click()
    page.get_by_label("Robot").select_option("standard/task")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Name on the card").fill("Call the client")
    page.locator('[data-field="p.title"] textarea').fill("Call about {=Document.TITLE}")
    page.get_by_label("To whom").select_option("responsible")
    page.get_by_label("Run", exact=True).select_option("delay")
    page.get_by_label("How long").fill("2")
    page.get_by_label("Unit").select_option("h")
    page.get_by_label("Wait for the previous robot to finish").check()
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/board/sales$"))

    # A trigger on the final stage.
    stage(page, "WON").get_by_role("link", name="Add a trigger").click()
    page.get_by_label("Event").fill("payment_received")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/board/sales$"))

    cards = stage(page, "NEW").locator("article.robot")
    expect(cards).to_have_count(2)
    expect(cards.nth(1).locator(".when")).to_have_text("After 2 h, after the previous robot")
    expect(cards.nth(1).locator(".to")).to_contain_text("responsible")
    expect(stage(page, "WON").locator(".trigger")).to_have_count(1)
    screenshot(page, "board-built")

    # What the board saved is what the API serves.
    robots = robots_at(host, token, "NEW")
    assert [(r["plugin"], r["robot"]) for r in robots] == [("standard", "notify"), ("standard", "task")]
    assert robots[0]["properties"] == {"text": "New deal: {=Document.TITLE}"}
    assert robots[0]["recipient"] == "responsible"
    assert robots[1]["title"] == "Call the client"
    assert robots[1]["timing"]["delay_seconds"] == 7200
    assert robots[1]["timing"]["after_previous"] is True
    triggers = host.api("GET", "/api/pipelines/sales/stages/WON/triggers", token).body
    assert [t["code"] for t in triggers] == ["payment_received"]

    # The robots run for a deal made through the API: test mode shows the
    # notification done and the task waiting for its time.
    assert host.api("PUT", "/api/users/1", token, {"id": 1, "name": "Olga"}).status == 200
    deal = {"kind": "deal", "pipeline": "sales", "fields": {"TITLE": "Pumps"}, "responsible": 1}
    made = host.api("POST", "/api/entities", token, deal)
    assert made.status == 201, made
    page.goto(f"{host.url}/board/sales?entity=deal:{made.body['id']}")
    first = stage(page, "NEW").locator("article.robot").first
    deadline = time.monotonic() + 20
    while "state-done" not in (first.get_attribute("class") or "") and time.monotonic() < deadline:
        time.sleep(0.3)
        page.reload()
    expect(first).to_have_class(re.compile(r"\bstate-done\b"))
    expect(stage(page, "NEW").locator("article.robot").nth(1)).to_have_class(re.compile(r"\bstate-waiting\b"))

    # Reordering and removing from the board.
    cards.nth(1).get_by_role("button", name="Earlier").click()
    expect(stage(page, "NEW").locator("article.robot h3").first).to_have_text("Call the client")
    assert [r["robot"] for r in robots_at(host, token, "NEW")] == ["task", "notify"]
    stage(page, "NEW").locator("article.robot").first.get_by_role("button", name="Delete").click()
    expect(stage(page, "NEW").locator("article.robot")).to_have_count(1)
    assert [r["robot"] for r in robots_at(host, token, "NEW")] == ["notify"]


def test_a_robot_with_a_bad_property_shows_the_error_by_its_field_and_saves_nothing(host, page, screenshot):
    token = host.token("admin")
    pipeline = {
        "kind": "deal",
        "names": {"en": "Sales"},
        "stages": [{"code": "NEW", "names": {"en": "New"}, "semantic": "in-progress"}],
    }
    assert host.api("PUT", "/api/pipelines/sales", token, pipeline).status == 200
    host.account("anna", "admin", PASSWORD)
    sign_in(page, host)
    page.goto(f"{host.url}/board/sales/stages/NEW/robots/new?robot=standard/task")

    # No title (required), hours that are no number, an expression never
    # closed, and no one to give the task to.
    page.locator('[data-field="p.deadline_hours"] input').fill("soon")
    page.locator('[data-field="p.description"] textarea').fill("About {=Document.TITLE")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved")
    expect(page.locator('[data-field="p.title"] .error')).to_have_text("is required")
    expect(page.locator('[data-field="p.deadline_hours"] .error')).to_contain_text("`soon`: not a whole number")
    expect(page.locator('[data-field="p.description"] .error')).to_contain_text("{=")
    expect(page.locator('[data-field="recipient"] .error')).to_have_text("is required")
    # What was typed is still there, to fix.
    expect(page.locator('[data-field="p.deadline_hours"] input')).to_have_value("soon")
    screenshot(page, "robot-form-errors")
    assert robots_at(host, token, "NEW") == []

    # Fixed, it saves.
    page.locator('[data-field="p.title"] textarea').fill("Call about {=Document.TITLE}")
    page.locator('[data-field="p.deadline_hours"] input').fill("24")
    page.locator('[data-field="p.description"] textarea').fill("About {=Document.TITLE}")
    page.get_by_label("To whom").select_option("responsible")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/board/sales$"))
    [robot] = robots_at(host, token, "NEW")
    assert robot["properties"]["deadline_hours"] == 24
    assert robot["properties"]["title"] == "Call about {=Document.TITLE}"


def test_a_manager_cannot_reach_admin_pages_or_actions(host, page):
    token = host.token("admin")
    pipeline = {
        "kind": "deal",
        "names": {"en": "Sales"},
        "stages": [{"code": "NEW", "names": {"en": "New"}, "semantic": "in-progress"}],
    }
    assert host.api("PUT", "/api/pipelines/sales", token, pipeline).status == 200
    robot = {"plugin": "standard", "robot": "notify", "recipient": "responsible", "properties": {"text": "Hi"}}
    placed = host.api("POST", "/api/pipelines/sales/stages/NEW/robots", token, robot)
    assert placed.status == 201
    robot_id = placed.body["id"]
    host.account("max", "manager", PASSWORD)
    sign_in(page, host, name="max")

    # The board reads, with nothing to change it offered.
    page.goto(f"{host.url}/board/sales")
    expect(page.locator("article.robot")).to_have_count(1)
    for name in ("Add a robot", "Add a trigger", "Add a stage", "Edit"):
        expect(page.get_by_role("link", name=name)).to_have_count(0)
    page.goto(f"{host.url}/board")
    expect(page.get_by_role("link", name="New pipeline")).to_have_count(0)

    # Each admin page is refused.
    for path in (
        "/board/new",
        "/board/sales/stages/new",
        "/board/sales/stages/NEW/robots/new",
        f"/board/sales/robots/{robot_id}",
        "/board/sales/stages/NEW/triggers/new",
        "/packages",
        "/settings",
        "/settings/people",
        "/settings/users/new",
        "/settings/calendar",
        "/settings/tokens",
    ):
        answer = page.goto(host.url + path)
        assert answer.status == 403, path
        expect(page.locator("body")).to_contain_text("Only admins may do this.")

    # And so is each action, even with the manager's own CSRF token.
    page.goto(f"{host.url}/board/sales")
    csrf = page.locator('form[action="/logout"] input[name="csrf"]').get_attribute("value")
    for path, form in (
        (f"/board/sales/robots/{robot_id}/delete", {}),
        (f"/board/sales/robots/{robot_id}/move", {"dir": "up"}),
        ("/board/new", {"code": "x", "kind": "deal", "name": "X", "stage_code": "A", "stage_name": "A"}),
        ("/board/sales/stages/NEW/delete", {}),
        ("/board/sales/stages/NEW/triggers/new", {"code": "incoming_call"}),
        ("/settings/users/new", {"id": "5", "name": "Eve"}),
        ("/settings/calendar", {"time_zone": "UTC", "work_start": "9:00", "work_end": "18:00"}),
        ("/settings/tokens", {"name": "mine", "role": "admin"}),
    ):
        answer = page.request.post(host.url + path, form={"csrf": csrf, **form}, max_redirects=0)
        assert answer.status == 403, (path, answer.status)
    assert len(robots_at(host, token, "NEW")) == 1
    assert host.api("GET", "/api/pipelines/sales/stages/NEW/triggers", token).body == []
    assert [p["code"] for p in host.api("GET", "/api/pipelines", token).body] == ["sales"]
    assert host.api("GET", "/api/users", token).body == []
    assert "mine" not in [t["name"] for t in host.api("GET", "/api/tokens", token).body]
