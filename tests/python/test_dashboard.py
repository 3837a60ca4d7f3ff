"""The collector's dashboard in a real headless Chromium (Selenium + chromium-driver)."""
import os
import shutil

import pytest

from conftest import wait_for
from test_metrics import Tree, get, value

ARTIFACTS = os.environ.get("DAGENT_ARTIFACTS", "/tmp/dagent-artifacts")


@pytest.fixture
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is missing (scripts/setup installs Debian's python3-selenium)")
    driver_path = shutil.which("chromedriver")
    if not driver_path:
        pytest.fail("chromedriver is missing (scripts/setup installs Debian's chromium-driver)")
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(driver_path), options=opts)
    yield d
    d.quit()


def test_dashboard_charts_the_reported_values(workdir, browser):
    tree = Tree(workdir)
    try:
        for i in range(2):
            tree.leaf(f"d{i}")
        for i, k in enumerate((4, 9)):
            wait_for(f"d{i}", lambda i=i, k=k: tree.ask(f"d{i}", 60, str(k)).returncode == 0)
        wait_for("both reports", lambda: value(tree.tree_text(), "test_jobs_total", node="d1", kind="a") == 9)
        browser.get(tree.base + "/dashboard/?metrics=test_jobs_total,test_temperature_celsius")

        def chart_points():
            return browser.execute_script("""
                const c = window.dagentCharts && window.dagentCharts['test_jobs_total'];
                if (!c) return null;
                return c.data.datasets.map(d => [d.label, d.data.length ? d.data[d.data.length - 1].y : null, d.data.length]);
            """)
        wait_for("the chart's points", lambda: sorted((l.split()[0], y) for l, y, n in chart_points() if n >= 2)
                 == [("d0", 4), ("d1", 9)], timeout=30)
        badges = browser.execute_script(
            "return [...document.querySelectorAll('#nodes span')].map(s => [s.dataset.node, s.dataset.up])")
        assert ["d0", "true"] in badges and ["d1", "true"] in badges
        os.makedirs(ARTIFACTS, exist_ok=True)
        shot = os.path.join(ARTIFACTS, "dashboard.png")
        browser.save_screenshot(shot)
        assert os.path.getsize(shot) > 10_000
        # A node that goes away shows as down.
        tree.procs["d1"].kill()
        wait_for("d1 down on the page", lambda: ["d1", "false"] in browser.execute_script(
            "return [...document.querySelectorAll('#nodes span')].map(s => [s.dataset.node, s.dataset.up])"), timeout=20)
        browser.save_screenshot(os.path.join(ARTIFACTS, "dashboard-node-down.png"))
    finally:
        tree.stop()
