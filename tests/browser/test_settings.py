"""The portal's settings in Chromium: a template installed from a file (its
problems listed by line, nothing written), its constants bound with a user
picker; users, departments and heads; the working-time calendar; API tokens
made, listed and revoked."""

import re

from playwright.sync_api import expect

from test_board import sign_in

PASSWORD = "correct horse battery"

TEMPLATE = """format = 1
code = "service"
version = "1.0.0"
names = { en = "Service desk" }

[[constants]]
code = "Dispatcher"
type = "user"
names = { en = "Dispatcher" }

[[pipelines]]
code = "service"
kind = "deal"
names = { en = "Service" }
stages = [
    { code = "NEW", semantic = "in-progress", names = { en = "New" } },
    { code = "DONE", semantic = "success", names = { en = "Done" } },
]

[[robots]]
pipeline = "service"
stage = "NEW"
plugin = "standard"
robot = "notify"
recipient = { constant = "Dispatcher" }
properties = { text = "New request {=Document.TITLE}" }
"""

# The same template with its robot (line 20) on a stage the pipeline does
# not have, and using a constant nothing declares.
BROKEN = TEMPLATE.replace('stage = "NEW"', 'stage = "OPEN"').replace(
    "New request {=Document.TITLE}", "{=GlobalConst.Nobody}"
)


def test_an_admin_installs_a_template_and_binds_its_constant(host, page, tmp_path, screenshot):
    token = host.token("admin")
    assert host.api("PUT", "/api/users/7", token, {"id": 7, "name": "Olga"}).status == 200
    host.account("anna", "admin", PASSWORD)
    sign_in(page, host)
    page.get_by_role("link", name="Settings").click()
    expect(page).to_have_url(re.compile(r"/settings$"))

    # A broken template: its problems by line, and nothing written.
    broken = tmp_path / "broken.toml"
    broken.write_text(BROKEN)
    page.get_by_label("Template file").set_input_files(str(broken))
    page.get_by_role("button", name="Install").click()
    problems = page.locator(".template-problems li")
    expect(problems.first).to_be_visible()
    texts = problems.all_inner_texts()
    assert len(texts) == 2, texts
    assert texts[0].startswith("line 20, column 1: ") and "has no stage `OPEN`" in texts[0], texts
    assert texts[1].startswith("line 20, column 1: ") and "constant `Nobody`" in texts[1], texts
    screenshot(page, "template-problems")
    assert host.api("GET", "/api/pipelines", token).body == []

    # The template whole: installed, with its constant still to bind.
    good = tmp_path / "service.toml"
    good.write_text(TEMPLATE)
    page.get_by_label("Template file").set_input_files(str(good))
    page.get_by_role("button", name="Install").click()
    expect(page.get_by_role("status")).to_contain_text("Pipelines created: service")
    expect(page.get_by_role("status")).to_contain_text("Dispatcher")
    row = page.locator('tr[data-constant="Dispatcher"]')
    expect(row.locator(".value")).to_have_text("not bound")

    # Bound with the user picker, by name.
    row.get_by_label("Bind Dispatcher").select_option(label="Olga (#7)")
    row.get_by_role("button", name="Save").click()
    expect(page.locator('tr[data-constant="Dispatcher"] .value')).to_have_text("Olga (#7)")
    constants = host.api("GET", "/api/constants", token).body
    assert constants["Dispatcher"] == {"user": 7}, constants
    screenshot(page, "settings")

    # A user who does not exist (a forged choice) is refused by the input,
    # naming the constant, and the binding stays.
    row = page.locator('tr[data-constant="Dispatcher"]')
    row.locator("select").evaluate("s => { s.add(new Option('ghost', '999')); s.value = '999'; }")
    row.get_by_role("button", name="Save").click()
    expect(page.locator('tr[data-constant="Dispatcher"] p.error')).to_have_text(
        "constant `Dispatcher` is a user, and there is no user 999; add them under settings, people first"
    )
    assert host.api("GET", "/api/constants", token).body["Dispatcher"] == {"user": 7}

    # The installed template is listed with its version; a newer version
    # adds its stage and says what it added.
    page.goto(host.url + "/settings")
    expect(page.locator('tr[data-template="service"] .version')).to_have_text("1.0.0")
    newer = tmp_path / "service-1.1.toml"
    newer.write_text(
        TEMPLATE.replace('version = "1.0.0"', 'version = "1.1.0"').replace(
            '    { code = "DONE"', '    { code = "WAIT", semantic = "in-progress", names = { en = "Waiting" } },\n    { code = "DONE"'
        )
    )
    page.get_by_label("Template file").set_input_files(str(newer))
    page.get_by_role("button", name="Install").click()
    expect(page.get_by_role("status")).to_contain_text("service 1.0.0 → 1.1.0")
    expect(page.get_by_role("status")).to_contain_text("Added: stage service/WAIT")
    expect(page.locator('tr[data-template="service"] .version')).to_have_text("1.1.0")
    stages = [s["code"] for s in host.api("GET", "/api/pipelines", token).body[0]["stages"]]
    assert stages == ["NEW", "WAIT", "DONE"], stages
    screenshot(page, "template-upgrade")


def test_an_admin_sets_up_people_calendar_and_tokens(host, page):
    token = host.token("admin")
    host.account("anna", "admin", PASSWORD)
    sign_in(page, host)
    page.goto(f"{host.url}/settings/people")

    # Two users, and a department headed by one of them.
    for number, name in (("1", "Olga"), ("2", "Ivan")):
        page.get_by_role("link", name="Add a user").click()
        page.get_by_label("Number").fill(number)
        page.get_by_label("Name").fill(name)
        page.get_by_role("button", name="Save").click()
        expect(page).to_have_url(re.compile(r"/settings/people$"))
    page.get_by_role("link", name="Add a department").click()
    page.get_by_label("Number").fill("10")
    page.get_by_label("Name").fill("Sales")
    page.get_by_label("Head").select_option(label="Olga (#1)")
    page.get_by_role("button", name="Save").click()
    page.locator('tr[data-user="2"]').get_by_role("link", name="Edit").click()
    page.get_by_label("Department").select_option(label="Sales")
    page.get_by_role("button", name="Save").click()
    expect(page.locator('tr[data-user="2"]')).to_contain_text("Sales")
    expect(page.locator('tr[data-user="1"]')).to_contain_text("Sales")  # heads it
    departments = host.api("GET", "/api/departments", token).body
    assert departments == [{"id": 10, "name": "Sales", "head": 1, "parent": None}]
    users = {u["id"]: u for u in host.api("GET", "/api/users", token).body}
    assert users[2]["department"] == 10

    # Ivan goes on leave and works from Vladivostok: both show in the list,
    # reach the API, and fill the form again when it is opened.
    page.locator('tr[data-user="2"]').get_by_role("link", name="Edit").click()
    page.get_by_label("Away from").fill("2026-12-01")
    page.get_by_label("Away until").fill("14 December")
    page.get_by_role("button", name="Save").click()
    expect(page.locator('[data-field="away_until"] .error')).to_contain_text("not a date")
    page.get_by_label("Away until").fill("2026-12-14")
    page.get_by_label("Time zone").fill("Asia/Vladivostok")
    page.get_by_label("Working day starts").fill("8:00")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/settings/people$"))
    row = page.locator('tr[data-user="2"]')
    expect(row).to_contain_text("away 2026-12-01 – 2026-12-14")
    expect(row).to_contain_text("Own working hours: Asia/Vladivostok 08:00–")
    users = {u["id"]: u for u in host.api("GET", "/api/users", token).body}
    assert users[2]["away"] == {"from": "2026-12-01", "until": "2026-12-14"}, users[2]
    assert users[2]["hours"] == {"time_zone": "Asia/Vladivostok", "work_start": "08:00:00"}, users[2]
    assert users[2]["department"] == 10
    row.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Away until")).to_have_value("2026-12-14")
    expect(page.get_by_label("Time zone")).to_have_value("Asia/Vladivostok")
    page.get_by_label("Away from").fill("")
    page.get_by_label("Away until").fill("")
    page.get_by_role("button", name="Save").click()
    users = {u["id"]: u for u in host.api("GET", "/api/users", token).body}
    assert "away" not in users[2] and users[2]["hours"]["time_zone"] == "Asia/Vladivostok", users[2]

    # A number taken is refused by its field.
    page.get_by_role("link", name="Add a user").click()
    page.get_by_label("Number").fill("1")
    page.get_by_label("Name").fill("Someone")
    page.get_by_role("button", name="Save").click()
    expect(page.locator('[data-field="id"] .error')).to_contain_text("taken")
    assert len(host.api("GET", "/api/users", token).body) == 2

    # The calendar: a bad time zone is refused, a good one saved.
    page.goto(f"{host.url}/settings/calendar")
    page.get_by_label("Time zone").fill("Mars/Olympus")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Mars/Olympus")
    page.get_by_label("Time zone").fill("Europe/Moscow")
    page.get_by_label("Working day starts").fill("10:00")
    page.get_by_label("Holidays").fill("2026-11-04\n2026-12-31..2027-01-08")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/settings/calendar$"))
    calendar = host.api("GET", "/api/calendar", token).body
    assert calendar["time_zone"] == "Europe/Moscow"
    assert calendar["work_start"] == "10:00:00"
    assert calendar["holidays"] == ["2026-11-04", "2026-12-31..2027-01-08"]
    assert calendar["weekend"] == ["Sat", "Sun"]

    # A token made (shown once), listed, usable, then revoked.
    page.goto(f"{host.url}/settings/tokens")
    page.get_by_label("Who or what will use it").fill("telephony")
    page.get_by_label("Role").select_option("integrator")
    page.get_by_role("button", name="Create").click()
    made = page.locator("code.token").inner_text()
    assert made.startswith("rh_")
    assert host.api("GET", "/api/pipelines", made).status == 200
    row = page.locator("tr", has_text="telephony")
    expect(row).to_contain_text("integrator")
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("tr", has_text="telephony")).to_have_count(0)
    assert host.api("GET", "/api/pipelines", made).status == 401


def test_an_admin_declares_a_custom_field_and_sees_the_values_that_no_longer_fit(host, page, screenshot):
    token = host.token("admin")
    host.account("anna", "admin", PASSWORD)
    sign_in(page, host)
    page.goto(f"{host.url}/settings/fields")
    page.get_by_role("link", name="+ Declare a field").click()
    page.get_by_label("Kind").select_option("deal")
    page.get_by_label("Code").fill("SEGMENT")
    page.get_by_label("Type").select_option("option")
    page.get_by_role("button", name="Save").click()
    # Refused by its field, nothing declared.
    expect(page.locator("#f-code-error")).to_contain_text("UF_")
    assert host.api("GET", "/api/fields", token).body == []

    page.get_by_label("Code").fill("UF_SEGMENT")
    page.get_by_label("Options").fill("vip = VIP\nregular")
    page.get_by_label("Name (English)").fill("Segment")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/settings/fields$"))
    expect(page.locator("tr[data-field='deal.UF_SEGMENT']")).to_contain_text("vip, regular")
    # The API now refuses what does not fit, naming the field.
    refused = host.api("POST", "/api/entities", token, {"kind": "deal", "fields": {"UF_SEGMENT": "gold"}})
    assert refused.status == 422 and refused.body["error"]["field"] == "UF_SEGMENT", refused
    made = host.api("POST", "/api/entities", token, {"kind": "deal", "fields": {"UF_SEGMENT": "vip"}})
    assert made.status == 201, made

    # Declared again as a number: the stored value stays and is listed as not fitting.
    page.get_by_role("link", name="+ Declare a field").click()
    page.get_by_label("Kind").select_option("deal")
    page.get_by_label("Code").fill("UF_SEGMENT")
    page.get_by_label("Type").select_option("integer")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("[data-misfits]")).to_have_text("1")
    expect(page.locator("table.misfits")).to_contain_text(f"deal:{made.body['id']}")
    screenshot(page, "fields")
