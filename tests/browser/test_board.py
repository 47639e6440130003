"""The admin board in Chromium: signing in and out, a pipeline's board with
its stages, triggers and robot cards as the API set them up, in English and
in Russian, and forms refused without their CSRF token."""

import re

from playwright.sync_api import expect

PIPELINE = {
    "code": "sales",
    "kind": "deal",
    "names": {"en": "Sales", "ru": "Продажи"},
    "stages": [
        {"code": "NEW", "names": {"en": "New", "ru": "Новая"}, "semantic": "in-progress"},
        {"code": "OFFER", "names": {"en": "Offer sent", "ru": "КП отправлено"}, "semantic": "in-progress"},
        {"code": "WON", "names": {"en": "Won", "ru": "Успех"}, "semantic": "success"},
        {"code": "LOST", "names": {"en": "Lost", "ru": "Провал"}, "semantic": "failure"},
    ],
}

CALL = {
    "plugin": "standard",
    "robot": "task",
    "title": "Call the client",
    "recipient": "responsible",
    "timing": {"delay_seconds": 3 * 86400, "working_time": True},
    "condition": {"compare": {"field": "OPPORTUNITY", "op": "ge", "value": {"money": "100000.00 RUB"}}},
    "properties": {"title": "Call about {=Document.TITLE}"},
}

NOTIFY = {
    "plugin": "standard",
    "robot": "notify",
    "recipient": "supervisor",
    "properties": {"text": "New deal {=Document.TITLE}"},
}


def portal(host):
    """The pipeline with two robots on NEW and a trigger on OFFER, made
    through the API; an admin account to sign in with."""
    token = host.token("admin")
    assert host.api("PUT", "/api/pipelines/sales", token, PIPELINE).status == 200
    for robot in (CALL, NOTIFY):
        answer = host.api("POST", "/api/pipelines/sales/stages/NEW/robots", token, robot)
        assert answer.status == 201, answer
    trigger = {"code": "incoming_call"}
    assert host.api("POST", "/api/pipelines/sales/stages/OFFER/triggers", token, trigger).status == 201
    host.account("anna", "admin", "correct horse battery")
    return token


def sign_in(page, host, name="anna", password="correct horse battery"):
    page.goto(host.url + "/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_an_admin_signs_in_and_sees_the_pipelines_board(host, page, screenshot):
    portal(host)
    sign_in(page, host, password="wrong password")
    expect(page.get_by_role("alert")).to_have_text("The user name or password is wrong.")
    expect(page.get_by_label("User name")).to_have_value("anna")

    sign_in(page, host)
    expect(page).to_have_url(re.compile(r"/board$"))
    expect(page.get_by_text("Signed in as")).to_contain_text("anna")
    page.get_by_role("link", name="Sales").click()
    expect(page).to_have_url(re.compile(r"/board/sales$"))

    columns = page.locator("section.stage")
    expect(columns.locator("h2")).to_have_text(["New", "Offer sent", "Won", "Lost"])
    expect(columns.nth(2)).to_have_class(re.compile(r"\bsuccess\b"))
    expect(columns.nth(3)).to_have_class(re.compile(r"\bfailure\b"))

    new = page.locator("section[data-stage=NEW]")
    cards = new.locator("article.robot")
    expect(cards.locator("h3")).to_have_text(["Call the client", "Notification"])
    call = cards.nth(0)
    expect(call.locator(".when")).to_have_text("After 3 d, in working time")
    expect(call.locator(".condition")).to_have_text("If: OPPORTUNITY ≥ 100000.00 RUB")
    expect(call.locator(".to")).to_have_text("To: the responsible")
    expect(cards.nth(1).locator(".when")).to_have_text("Immediately")
    expect(cards.nth(1).locator(".to")).to_have_text("To: the responsible's head")
    expect(page.locator("section[data-stage=OFFER] .trigger")).to_have_text(["⚡ incoming_call"])
    expect(page.locator("section[data-stage=WON] .empty")).to_have_text("No robots")
    screenshot(page, "board")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(host.url + "/board/sales")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_the_board_speaks_russian(host, page, screenshot):
    portal(host)
    sign_in(page, host)
    page.goto(host.url + "/board/sales")
    page.get_by_role("link", name="Русский").click()
    expect(page).to_have_url(re.compile(r"/board/sales$"))
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.locator("h1")).to_contain_text("Продажи")
    expect(page.locator("section.stage h2")).to_have_text(["Новая", "КП отправлено", "Успех", "Провал"])
    call = page.locator("section[data-stage=NEW] article.robot").nth(0)
    expect(call.locator(".when")).to_have_text("Через 3 д, в рабочее время")
    expect(call.locator(".to")).to_have_text("Кому: ответственному")
    expect(page.get_by_role("button", name="Выйти")).to_be_visible()
    screenshot(page, "board-ru")

    page.get_by_role("link", name="English").click()
    expect(page.locator("section.stage h2").first).to_have_text("New")


def test_a_form_posted_without_its_csrf_token_does_nothing(host, page):
    portal(host)
    sign_in(page, host)
    expect(page).to_have_url(re.compile(r"/board$"))
    # The sign-out form, posted from elsewhere without the page's token.
    answer = page.request.post(host.url + "/logout", form={"csrf": "0" * 64})
    assert answer.status == 403
    assert "security token" in answer.text()
    page.goto(host.url + "/board/sales")
    expect(page.locator("section.stage")).to_have_count(4)

    # Nor is the sign-in form taken without the token it was served with.
    other = page.context.browser.new_context()
    answer = other.request.post(
        host.url + "/login", form={"name": "anna", "password": "correct horse battery", "csrf": "x"}
    )
    assert answer.status == 401
    assert "The form expired" in answer.text()
    other.close()


def test_a_session_cookie_is_http_only_and_strict(host, page):
    portal(host)
    sign_in(page, host)
    expect(page).to_have_url(re.compile(r"/board$"))
    [cookie] = [c for c in page.context.cookies() if c["name"] == "robohost_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie").find("robohost_session") == -1


def test_test_mode_colours_the_cards_by_what_happened_for_a_deal(host, page, screenshot):
    token = host.token("admin")
    assert host.api("PUT", "/api/pipelines/sales", token, PIPELINE).status == 200
    big = {"compare": {"field": "OPPORTUNITY", "op": "ge", "value": {"money": "100000.00 RUB"}}}
    robots = [
        {"plugin": "standard", "robot": "notify", "title": "Tell the manager", "recipient": "responsible",
         "properties": {"text": "New deal {=Document.TITLE}"}},
        {"plugin": "standard", "robot": "task", "title": "Call in 3 days", "recipient": "responsible",
         "timing": {"delay_seconds": 3 * 86400}, "properties": {"title": "Call about {=Document.TITLE}"}},
        {"plugin": "standard", "robot": "comment", "title": "Note a big deal", "condition": big,
         "properties": {"text": "A big one"}},
        {"plugin": "standard", "robot": "email", "title": "Send the offer",
         "properties": {"subject": "Offer", "body": "Our offer"}},
    ]
    for robot in robots:
        answer = host.api("POST", "/api/pipelines/sales/stages/NEW/robots", token, robot)
        assert answer.status == 201, answer
    deal = {"kind": "deal", "pipeline": "sales", "responsible": 7,
            "fields": {"TITLE": "Pumps", "OPPORTUNITY": {"money": "5000.00 RUB"}}}
    deal = host.api("POST", "/api/entities", token, deal).body["id"]
    from test_runs import wait_for

    wait_for(
        host, token, f"/api/runs?entity=deal:{deal}",
        lambda runs: sorted(r["status"] for r in runs) == ["dead", "queued", "skipped", "succeeded"],
        "the deal's runs settled",
    )
    # A robot added after the deal entered the stage has no run for it.
    late = {"plugin": "standard", "robot": "comment", "title": "Added later", "properties": {"text": "Late"}}
    assert host.api("POST", "/api/pipelines/sales/stages/NEW/robots", token, late).status == 201

    host.account("anna", "admin", "correct horse battery")
    sign_in(page, host)
    page.goto(host.url + "/board/sales")
    page.get_by_label(re.compile("Test mode")).fill(f"deal:{deal}")
    page.get_by_role("button", name="Test").click()
    expect(page).to_have_url(re.compile(rf"/board/sales\?entity=deal%3A{deal}$|/board/sales\?entity=deal:{deal}$"))
    expect(page.locator(".testing")).to_have_text(f"deal:{deal} in stage New")
    cards = page.locator("section[data-stage=NEW] article.robot")
    expect(cards).to_have_count(5)
    expected = [
        ("done", "Done"),
        ("waiting", "Waiting: until "),
        ("skipped", "Skipped: condition is false"),
        ("failed", "Failed: robot error `no_address`"),
        ("not-started", "Not started: no run for this entry"),
    ]
    for i, (state, says) in enumerate(expected):
        expect(cards.nth(i)).to_have_class(re.compile(rf"\bstate-{state}\b"))
        expect(cards.nth(i).locator(".verdict")).to_contain_text(says)
    expect(cards.nth(3)).to_have_attribute("title", re.compile("no_address"))
    expect(page.locator("section[data-stage=OFFER] article.robot.state-done")).to_have_count(0)
    screenshot(page, "test-mode")

    # Another pipeline's entity, or none, is said so.
    page.get_by_label(re.compile("Test mode")).fill("deal:999")
    page.get_by_role("button", name="Test").click()
    expect(page.get_by_role("alert")).to_contain_text("deal:999")


def test_the_demo_portal_ends_with_a_board_to_click_through(demo_host, page, screenshot):
    # The password of the account made at first start, as printed.
    password = re.search(r"user admin, password (\S+);", demo_host.log()).group(1)
    assert "the board is at http://" in demo_host.log()
    sign_in(page, demo_host, name="admin", password=password)
    links = page.locator("ul.pipelines a")
    expect(links).not_to_have_count(0)
    links.first.click()
    expect(page.locator("section.stage").first).to_be_visible()
    expect(page.locator("article.robot").first).to_be_visible()
    screenshot(page, "demo-board")
