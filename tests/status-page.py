#!/usr/bin/python3
"""Drive lvs-ctl's status page in headless Chromium (Debian's chromium, chromedriver and
python3-selenium), for tests/status_page.rs: load it with HTTP basic credentials at a
phone's size and at a desktop's, take screenshots, read the DOM, click "drain" on a real
server and "acknowledge" on a failing service, and print what was seen as one JSON
object. Every wait is bounded; any failure exits non-zero with the reason."""

import argparse
import base64
import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

p = argparse.ArgumentParser()
p.add_argument("--url", required=True)
p.add_argument("--user", required=True)
p.add_argument("--password", required=True)
p.add_argument("--out", required=True, help="directory for the screenshots and the profile")
p.add_argument("--drain", required=True, help="the real server to drain, IP:PORT")
p.add_argument("--ack", required=True, help="the mon-check service to acknowledge, GROUP/SERVICE")
a = p.parse_args()

WAIT = 20
# The page replaces its live part every 2 s: an element found may be gone when used.
GONE = (NoSuchElementException, StaleElementReferenceException)


def until(d, f):
    return WebDriverWait(d, WAIT, ignored_exceptions=GONE).until(f)


def click(d, css):
    def go(d):
        d.find_element(By.CSS_SELECTOR, css).click()
        return True

    until(d, go)


def text(d, css):
    return until(d, lambda d: d.find_element(By.CSS_SELECTOR, css).text)


def state(d):
    """What the page shows now: its text, its size against the window's, what ran."""
    return d.execute_script(
        """
        var de = document.documentElement;
        var widest = 0;
        document.querySelectorAll('table').forEach(function (t) {
          widest = Math.max(widest, t.getBoundingClientRect().right);
        });
        return {
          text: document.body.innerText,
          nodes: document.getElementById('nodes').innerText,
          scroll_width: de.scrollWidth,
          inner_width: window.innerWidth,
          widest_table: widest,
          tables: document.querySelectorAll('table').length,
          scripts: document.querySelectorAll('script').length,
          imgs: document.querySelectorAll('img').length,
          pwned: typeof window.pwned !== 'undefined',
          viewport: !!document.querySelector('meta[name=viewport]'),
        };
        """
    )


def shot(d, path):
    """The whole page, below the fold too."""
    size = d.execute_script(
        "return [window.innerWidth, document.documentElement.scrollHeight]"
    )
    png = d.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1},
        },
    )
    with open(path, "wb") as f:
        f.write(base64.b64decode(png["data"]))


opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for o in (
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--no-first-run",
    "--user-data-dir=%s/profile" % a.out,
    "--window-size=390,844",
):
    opts.add_argument(o)
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
report = {}
try:
    d.set_page_load_timeout(WAIT)
    # Basic credentials on every request, the page's own fetches too.
    auth = base64.b64encode(("%s:%s" % (a.user, a.password)).encode()).decode()
    d.execute_cdp_cmd("Network.enable", {})
    d.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": "Basic " + auth}})
    # A phone (390 CSS pixels wide), then a desktop; twice the pixels for the OCR.
    for name, width, height, mobile in (("phone", 390, 844, True), ("desktop", 1280, 1100, False)):
        d.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": mobile},
        )
        d.get(a.url)
        until(d, lambda d: d.find_elements(By.CSS_SELECTOR, "table.reals"))
        report[name] = state(d)
        shot(d, "%s/%s.png" % (a.out, name))

    # Drain through the page's own button.
    row = 'tr[data-real="%s"]' % a.drain
    click(d, row + " button")
    report["drain_result"] = text(d, "#result")
    # Left alone, the page refreshes itself: a mark put in the live part goes when it
    # is replaced, and the real server's row comes to show the kernel's weight 0.
    d.execute_script("var m=document.createElement('i');m.id='mark';document.getElementById('live').appendChild(m);")
    t0 = time.time()
    until(d, lambda d: not d.find_elements(By.ID, "mark"))
    report["refreshed_after_s"] = round(time.time() - t0, 2)
    until(d, lambda d: "kernel 0" in d.find_element(By.CSS_SELECTOR, row + " td.weight").text)
    report["drained_row"] = text(d, row)
    report["drained_button"] = text(d, row + " button")

    # Acknowledge the failing service.
    srow = 'tr[data-service="%s"]' % a.ack
    click(d, srow + " button")
    until(d, lambda d: "acknowledged" in d.find_element(By.ID, "result").text)
    report["ack_result"] = text(d, "#result")
    report["ack_row"] = text(d, srow)
    report["after"] = state(d)
except Exception as e:  # the reason, then a non-zero exit
    report["error"] = "%s: %s" % (type(e).__name__, e)
    try:
        report["page"] = d.page_source[:4000]
    except Exception:
        pass
finally:
    d.quit()
print(json.dumps(report))
sys.exit(1 if "error" in report else 0)
