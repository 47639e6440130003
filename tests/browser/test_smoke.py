"""The chain the browser tests stand on: the built binary serves, Chromium
opens its pages, a screenshot is saved, and the CLI and the API share the
host's database."""


def test_chromium_opens_the_hosts_pages(host, page, screenshot):
    answer = page.goto(f"{host.url}/openapi.json")
    assert answer.status == 200
    # Chromium shows JSON as text.
    assert '"robohost"' in page.locator("body").inner_text()

    answer = page.goto(f"{host.url}/health")
    assert answer.status == 200
    assert '"ok"' in page.locator("body").inner_text()
    assert screenshot(page, "smoke").stat().st_size > 0


def test_the_api_wants_a_token_made_by_the_cli(host):
    answer = host.api("GET", "/api/runs")
    assert answer.status == 401, answer
    assert answer.body["error"]["code"] == "unauthorized"

    # The CLI writes the token into the database the host serves.
    answer = host.api("GET", "/api/runs", token=host.token("admin"))
    assert answer.status == 200, answer
