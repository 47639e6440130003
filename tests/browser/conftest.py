"""Fixtures for the browser tests: a `robohost serve` process on a fresh
SQLite database (`host`, or `demo_host` with `--demo`), and Playwright's
Chromium (`browser`, `page`, `screenshot`).

Run them with `bash tests/browser/run`, which builds the binary and passes
its path in ROBOHOST_BIN. When a test fails, its report shows the host's log
and a screenshot of its page is saved in the artifacts folder.
"""

import json as jsonlib
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from collections import namedtuple
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("ROBOHOST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("ROBOHOST_ARTIFACTS")
    or Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/robohost/target")) / "browser-artifacts"
)
START_TIMEOUT = 60  # seconds until GET /health must answer
STOP_TIMEOUT = 5  # seconds between SIGTERM and SIGKILL

Reply = namedtuple("Reply", "status body")  # body: parsed JSON, or text


def binary():
    path = os.environ.get("ROBOHOST_BIN")
    if not path or not os.access(path, os.X_OK):
        pytest.exit("ROBOHOST_BIN is not set to the robohost binary: run `bash tests/browser/run`", returncode=2)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Host:
    """One `robohost serve` process, its database and its log."""

    def __init__(self, folder: Path, demo: bool):
        self.folder = folder
        self.database_url = f"sqlite://{folder}/robohost.sqlite"
        self.log_path = folder / "robohost.log"
        self.url = f"http://127.0.0.1:{free_port()}"
        # The developer's own configuration and database must not leak in;
        # the CLI helper reaches this database through the variable.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOHOST_")}
        self.env["ROBOHOST_DATABASE_URL"] = self.database_url
        args = [binary(), "serve", "--listen", self.url.removeprefix("http://")]
        args += ["--database-url", self.database_url] + (["--demo"] if demo else [])
        with open(self.log_path, "wb") as log:
            # Its own process group, so SIGKILL also reaches the compile
            # workers it starts.
            self.process = subprocess.Popen(
                args, cwd=folder, env=self.env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self._wait_healthy()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_healthy(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"robohost serve exited ({self.process.returncode}):\n{self.log()}")
            try:
                if self.api("GET", "/health").status == 200:
                    return
            except OSError:
                pass  # not listening yet
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"robohost serve did not answer /health in {START_TIMEOUT} s:\n{self.log()}")

    def robohost(self, *args, stdin=None) -> str:
        """Runs the robohost CLI on this host's database; returns its stdout."""
        done = subprocess.run(
            [binary(), *args], cwd=self.folder, env=self.env, capture_output=True, text=True, input=stdin
        )
        if done.returncode != 0:
            raise AssertionError(f"robohost {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done.stdout

    def token(self, role="admin", name="browser test") -> str:
        """A new API token (admin, integrator or manager)."""
        return self.robohost("token", "create", "--name", name, "--role", role).strip()

    def account(self, name, role, password):
        """A board account (admin, integrator or manager) with this password."""
        self.robohost("account", "set", name, "--role", role, stdin=password + "\n")

    def api(self, method, path, token=None, json=None, text=None, content_type="text/plain") -> Reply:
        """One HTTP request with a JSON body, or a `text` one of
        `content_type`; 4xx and 5xx answers are returned, not raised."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None
        if json is not None:
            data = jsonlib.dumps(json).encode()
            headers["Content-Type"] = "application/json"
        elif text is not None:
            data = text.encode()
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, kind, text = answer.status, answer.headers.get_content_type(), answer.read().decode()
        except urllib.error.HTTPError as error:
            status, kind, text = error.code, error.headers.get_content_type(), error.read().decode()
        return Reply(status, jsonlib.loads(text) if kind == "application/json" and text else text)

    def stop(self):
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # lets runs in flight finish
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            warnings.warn(f"robohost serve did not stop {STOP_TIMEOUT} s after SIGTERM; killed it")
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _host(folder: Path, demo):
    folder.mkdir()
    host = Host(folder, demo)
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture
def host(tmp_path):
    """`robohost serve` on a free port with an empty SQLite database."""
    yield from _host(tmp_path / "host", demo=False)


@pytest.fixture
def demo_host(tmp_path):
    """`robohost serve --demo`: the Prom2B template and sample leads and deals."""
    yield from _host(tmp_path / "demo_host", demo=True)


@pytest.fixture(scope="session")
def browser():
    # Debian's Chromium, never a browser of Playwright's own; --no-sandbox
    # because the tests run as root.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A page in a fresh browser context (no cookies or storage shared)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def save_screenshot(page, name) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path


@pytest.fixture
def screenshot():
    """screenshot(page, name) saves <artifacts>/<name>.png and returns its path."""
    return save_screenshot


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failing test: a screenshot of its page, and the hosts' logs in
    its report. Runs before the fixtures are torn down, so both still exist."""
    report = yield
    if report.failed and report.when in ("setup", "call"):
        page = item.funcargs.get("page")
        if page is not None and not page.is_closed():
            name = re.sub(r"[^\w.-]+", "_", item.nodeid) + ".failed"
            try:
                report.sections.append(("screenshot", str(save_screenshot(page, name))))
            except Exception as error:  # a crashed page must not hide the failure
                report.sections.append(("screenshot", f"none: {error}"))
        for name in ("host", "demo_host"):
            if isinstance(item.funcargs.get(name), Host):
                report.sections.append((f"robohost serve log ({name})", item.funcargs[name].log()))
    return report
