"""The run log in Chromium: dead runs found by status, a run's page with
its outcome and blame, a retry once the cause is fixed; and a manager who
reads the log but may not retry."""

import re
import time

from playwright.sync_api import expect

from test_board import PIPELINE, sign_in

EMAIL = {
    "plugin": "standard",
    "robot": "email",
    "title": "Send the offer",
    "properties": {"subject": "Offer", "body": "Our offer for {=Document.TITLE}"},
}


def wait_for(host, token, path, check, what):
    """Polls `path` until `check(body)` holds; the host's workers run the robots."""
    for _ in range(100):
        body = host.api("GET", path, token).body
        if check(body):
            return body
        time.sleep(0.1)
    raise AssertionError(f"{what}: {body}")


def dead_offer(host):
    """A deal whose offer email cannot go out (it has no address): its run is dead."""
    token = host.token("admin")
    assert host.api("PUT", "/api/pipelines/sales", token, PIPELINE).status == 200
    assert host.api("POST", "/api/pipelines/sales/stages/NEW/robots", token, EMAIL).status == 201
    deal = host.api("POST", "/api/entities", token, {"kind": "deal", "pipeline": "sales", "fields": {"TITLE": "Pumps"}})
    assert deal.status == 201, deal
    deal = deal.body["id"]
    runs = wait_for(
        host, token, f"/api/runs?entity=deal:{deal}", lambda runs: runs and runs[0]["status"] == "dead", "a dead run"
    )
    return token, deal, runs[0]["id"]


def test_an_admin_finds_a_dead_run_reads_why_and_retries_it(host, page, screenshot):
    token, deal, run = dead_offer(host)
    host.account("anna", "admin", "correct horse battery")
    sign_in(page, host)
    page.get_by_role("link", name="Runs").click()
    page.get_by_label("Status").select_option("dead")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/runs\?status=dead"))
    rows = page.locator("tr.run")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Send the offer")
    expect(rows.first).to_contain_text(f"deal:{deal}")

    page.get_by_role("link", name=str(run), exact=True).click()
    expect(page).to_have_url(re.compile(rf"/runs/{run}$"))
    expect(page.locator("h1")).to_contain_text("Send the offer")
    expect(page.locator("h1 .status")).to_have_text("dead")
    expect(page.locator("dd.result")).to_contain_text("no_address")
    expect(page.locator("dd.blame")).to_have_text("guest")
    screenshot(page, "run")

    # The deal gets its address; the retry sends the email.
    fixed = host.api("PATCH", f"/api/entities/deal/{deal}", token, {"fields": {"EMAIL": "buyer@example.com"}})
    assert fixed.status == 200, fixed
    page.get_by_role("button", name="Retry").click()
    expect(page).to_have_url(re.compile(rf"/runs/{run}$"))
    wait_for(host, token, f"/api/runs/{run}", lambda r: r["status"] == "succeeded", "the retried run")
    page.reload()
    expect(page.locator("h1 .status")).to_have_text("succeeded")


def test_retrying_many_from_the_log(host, page):
    token, first, _ = dead_offer(host)
    second = host.api("POST", "/api/entities", token, {"kind": "deal", "pipeline": "sales", "fields": {"TITLE": "Valves"}})
    second = second.body["id"]
    wait_for(host, token, "/api/runs?status=dead", lambda runs: len(runs) == 2, "two dead runs")
    for deal in (first, second):
        host.api("PATCH", f"/api/entities/deal/{deal}", token, {"fields": {"EMAIL": f"d{deal}@example.com"}})
    host.account("anna", "admin", "correct horse battery")
    sign_in(page, host)
    page.goto(host.url + "/runs?status=dead")
    boxes = page.get_by_role("checkbox")
    expect(boxes).to_have_count(2)
    for i in range(2):
        boxes.nth(i).check()
    page.get_by_role("button", name="Retry the selected dead runs").click()
    expect(page).to_have_url(re.compile(r"/runs\?status=dead"))
    wait_for(host, token, "/api/runs?status=succeeded", lambda runs: len(runs) == 2, "both retried runs")
    page.reload()
    expect(page.locator("tr.run")).to_have_count(0)


def test_a_manager_reads_the_log_but_may_not_retry(host, page):
    _, _, run = dead_offer(host)
    host.account("mike", "manager", "manager password")
    sign_in(page, host, name="mike", password="manager password")
    page.goto(host.url + "/runs?status=dead")
    expect(page.locator("tr.run")).to_have_count(1)
    expect(page.get_by_role("checkbox")).to_have_count(0)
    expect(page.get_by_role("button", name="Retry the selected dead runs")).to_have_count(0)
    page.goto(host.url + f"/runs/{run}")
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)

    # Posting the form anyway, with the session's own token, is refused.
    csrf = page.locator("form[action='/logout'] input[name=csrf]").get_attribute("value")
    answer = page.request.post(host.url + "/runs/retry", form={"csrf": csrf, "id": str(run)})
    assert answer.status == 403
    assert "Only admins" in answer.text()
    page.reload()
    expect(page.locator("h1 .status")).to_have_text("dead")


def test_the_log_filters_by_robot_plugin_and_day(host, page):
    token, deal, dead = dead_offer(host)
    notify = {"plugin": "standard", "robot": "notify", "title": "Tell the manager",
              "recipient": "responsible", "properties": {"text": "Hi"}}
    answer = host.api("POST", "/api/pipelines/sales/stages/NEW/robots", token, notify)
    assert answer.status == 201
    notify_id = answer.body["id"]
    assert host.api("PUT", "/api/users/1", token, {"id": 1, "name": "Olga"}).status == 200
    other = host.api("POST", "/api/entities", token,
                     {"kind": "deal", "pipeline": "sales", "responsible": 1, "fields": {"TITLE": "Valves"}})
    assert other.status == 201
    wait_for(host, token, f"/api/runs?entity=deal:{other.body['id']}",
             lambda runs: len(runs) == 2 and all(r["status"] in ("dead", "succeeded") for r in runs), "two runs")
    host.account("anna", "admin", "correct horse battery")
    sign_in(page, host)

    page.goto(host.url + "/runs")
    expect(page.locator("tr.run")).to_have_count(3)
    page.get_by_label("Robot").select_option(str(notify_id))
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tr.run")).to_have_count(1)
    expect(page.locator("tr.run")).to_contain_text("Tell the manager")
    api = host.api("GET", f"/api/runs?robot={notify_id}", token).body
    assert [r["id"] for r in api] == [int(page.locator("tr.run a").first.inner_text())]

    page.get_by_label("Robot").select_option("")
    page.get_by_label("Plugin").select_option("standard")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tr.run")).to_have_count(3)

    # Days: today holds them all, a day long past none.
    today = time.strftime("%Y-%m-%d", time.gmtime())
    page.get_by_label("From").fill(today)
    page.get_by_label("To").fill(today)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tr.run")).to_have_count(3)
    page.get_by_label("From").fill("2020-01-01")
    page.get_by_label("To").fill("2020-01-02")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tr.run")).to_have_count(0)
    assert host.api("GET", "/api/runs?until=2020-01-02T00:00:00Z", token).body == []
    assert len(host.api("GET", "/api/runs?plugin=standard", token).body) == 3
    assert host.api("GET", "/api/runs?plugin=nothing", token).body == []
