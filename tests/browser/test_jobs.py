"""A bulk reassignment on the board in Chromium: an admin uploads a CSV
file, reads what it will do and the line it cannot apply, starts it, and
watches it end; a manager may watch but not start."""

import re

from playwright.sync_api import expect

from test_board import sign_in

PASSWORD = "correct horse battery"


def test_an_admin_reassigns_companies_from_a_file_and_watches_the_job(host, page, tmp_path, screenshot):
    token = host.token("admin")
    for user in [{"id": 3, "name": "Petr"}, {"id": 7, "name": "Olga"}]:
        assert host.api("PUT", f"/api/users/{user['id']}", token, user).status == 200
    ids = []
    for title in ["Pumps", "Valves", "Gears"]:
        made = host.api("POST", "/api/entities", token, {"kind": "company", "responsible": 3, "fields": {"TITLE": title}})
        assert made.status == 201
        ids.append(made.body["id"])
    deal = host.api("POST", "/api/entities", token, {"kind": "deal", "responsible": 3, "links": [{"kind": "company", "id": ids[0]}]})
    assert deal.status == 201
    host.account("anna", "admin", PASSWORD)
    sign_in(page, host)
    page.get_by_role("link", name="Bulk jobs").click()
    expect(page).to_have_url(re.compile(r"/jobs$"))

    csv = tmp_path / "petr.csv"
    csv.write_text("id,new responsible\n" + "".join(f"{i},Olga\n" for i in ids) + "999,Olga\n")
    page.get_by_label("File").set_input_files(str(csv))
    page.get_by_label("A bare number names a").select_option("company")
    page.get_by_role("button", name="Show what it will do").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
    expect(page.locator("[data-status]")).to_have_text("planned")
    expect(page.locator("[data-plan-rows]")).to_have_text("3 company")
    expect(page.locator("[data-plan-cascade]")).to_have_text("1 deal")
    expect(page.locator("[data-plan-unusable]")).to_have_text("1")
    expect(page.locator("tr[data-line='5']")).to_contain_text("company:999 does not exist")
    screenshot(page, "job-planned")
    # Planned: nothing changed yet.
    assert host.api("GET", f"/api/entities/company/{ids[0]}", token).body["responsible"] == 3

    page.get_by_role("button", name="Start").click()
    expect(page.locator("[data-status]")).to_have_text("done", timeout=15_000)
    expect(page.locator("[data-applied]")).to_contain_text("3 (1 deal, 0 activity, 0 task)")
    expect(page.locator("[data-pending]")).to_have_text("0")
    screenshot(page, "job-done")
    for i in ids:
        assert host.api("GET", f"/api/entities/company/{i}", token).body["responsible"] == 7
    assert host.api("GET", f"/api/entities/deal/{deal.body['id']}", token).body["responsible"] == 7

    # The company's timeline tells who had it and which job changed it.
    page.goto(f"{host.url}/entities/company/{ids[0]}")
    expect(page.locator("body")).to_contain_text("Responsible changed: Petr → Olga")
    expect(page.locator("body")).to_contain_text(re.compile(r"Bulk job #\d+"))


def test_a_manager_watches_jobs_but_cannot_start_one(host, page):
    token = host.token("admin")
    assert host.api("PUT", "/api/users/7", token, {"id": 7, "name": "Olga"}).status == 200
    made = host.api("POST", "/api/entities", token, {"kind": "company", "responsible": 7})
    host.account("mike", "manager", PASSWORD)
    sign_in(page, host, "mike")
    page.goto(f"{host.url}/jobs")
    expect(page.get_by_role("button", name="Show what it will do")).to_have_count(0)
    # A job planned through the API: the manager sees it, and no start button.
    job = host.api("POST", "/api/jobs/reassign?kind=company", token, text=f"{made.body['id']},7\n", content_type="text/csv")
    assert job.status == 201, job.body
    job_id = job.body["id"]
    page.goto(f"{host.url}/jobs/{job_id}")
    expect(page.locator("[data-status]")).to_have_text("planned")
    expect(page.get_by_role("button", name="Start")).to_have_count(0)
