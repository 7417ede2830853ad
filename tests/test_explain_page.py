"""The explainer page in a real browser: Debian's chromium driven by Playwright for Python.

Opened from file:// with every request other than the file itself aborted and counted (must be 0), no console
errors, units chosen and their numbers compared with explain.json, the class switched and Grad-CAM changed, and
an image uploaded in `zoo serve` mode. Skipped (with the reason) where chromium or playwright is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

import zoo  # noqa: E402
from zoo.explain import report  # noqa: E402
from zoo.explain.images import sample_image  # noqa: E402

CHROMIUM = os.environ.get("ZOO_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does)", allow_module_level=True)

SMALL = ["lenet5", "lenet5_original", "resnet20", "densenet40_k12"]
EVERY_FAMILY = ["lenet5_harley", "lenet5_original", "alexnet", "zfnet", "vgg11", "googlenet", "resnet18",
                "densenet121"]


def make_page(name: str, folder: Path, methods=report.METHODS) -> tuple[Path, dict]:
    image, source = sample_image(3)
    result = report.explain(report.Request(spec=zoo.get_spec(name), image=image, image_source=source,
                                           methods=methods))
    page = report.write(result, folder)
    return page, json.loads((folder / "explain.json").read_text())


class Browser:
    """One chromium page that counts (and aborts) every request but the page's own file, and keeps the console
    errors."""

    def __init__(self, playwright, allowed_prefix: str):
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        self.page = self.browser.new_page(viewport={"width": 1280, "height": 900})
        self.blocked, self.errors = [], []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

        def route(r):
            if r.request.url.startswith(allowed_prefix):
                r.continue_()
            else:
                self.blocked.append(r.request.url)
                r.abort()

        self.page.route("**/*", route)

    def close(self):
        self.browser.close()


@pytest.fixture(scope="module")
def playwright():
    with sync_api.sync_playwright() as p:
        yield p


def check_units(page, data: dict, count: int = 3) -> None:
    """Click precomputed units; the page's value and model value equal explain.json's."""
    keys = list(data["units"])
    for key in keys[:: max(1, len(keys) // count)][:count]:
        page.select_option("#unit-select", key)
        page.wait_for_selector(f'#unit-key:text-is("{key}")')
        chain = data["units"][key]
        shown = page.locator(".trace").all()
        assert len(shown) == len(chain)
        for trace, box in zip(chain, shown):
            assert float(box.locator(".unit-model-value").inner_text()) == pytest.approx(trace["model_value"],
                                                                                         rel=1e-5, abs=1e-6)
            if trace["value"] is not None:
                assert float(box.locator(".unit-value").inner_text()) == pytest.approx(trace["value"], rel=1e-5,
                                                                                       abs=1e-6)


def shown_number(text: str) -> float:
    return float(text.rstrip("%")) / (100 if text.endswith("%") else 1)


def check_family(page, data: dict) -> None:
    """Section 8 draws each structure of explain.json's "family" with its numbers."""
    F = data["family"]
    for table in F["connection_tables"]:
        box = page.locator(f'table.c3-table[data-layer="{table["layer"]}"]')
        assert box.locator("td.connected").count() == table["connections"]
        ours = [shown_number(t) for t in page.locator(f'#table-{table["layer"]} td.c3-ours').all_text_contents()]
        assert ours == pytest.approx([r["pre_activation_mean"] for r in table["rows"]], rel=1e-5, abs=1e-6)
    for t in F["towers"]:
        shares = page.locator(f'#towers-{t["layer"]} .tower-share').all_text_contents()
        assert [shown_number(v) for v in shares] == pytest.approx([w["share"] for w in t["towers"]], abs=6e-4)
    assert page.locator('[id^="lrn-"]').count() == len(F["lrn"])
    for m in F["inception"]:
        shares = page.locator(f'[id="inception-{m["layer"]}"] .branch-share').all_text_contents()
        assert [shown_number(v) for v in shares] == pytest.approx([b["share"] for b in m["branches"]], abs=6e-4)
    rows = page.locator("tr.residual-row")
    assert rows.count() == len(F["residual"])
    for i, block in enumerate(F["residual"]):
        assert shown_number(rows.nth(i).locator(".ratio").text_content()) == pytest.approx(block["ratio"], rel=1e-5)
    for block in F["dense"]:
        box = page.locator(f'[id="dense-{block["layer"]}"]')
        assert box.locator(".dense-strip .source").count() == len(block["sources"])
        assert box.locator("td.w").count() == sum(len(r["mean_abs_w"]) for r in block["weights"])
    if data["filters"] and data["filters"]["towers"]:
        assert page.locator(".filter-tower").count() == len(data["filters"]["towers"]["filters"])


def check_page(playwright, page_path: Path, data: dict, screenshot: Path | None = None) -> None:
    url = page_path.resolve().as_uri()
    browser = Browser(playwright, url)
    try:
        page = browser.page
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        check_units(page, data)
        # a clicked cell of a feature map draws that unit's receptive field
        first = next(layer for layer in data["layers"] if layer["shown"])
        page.locator(f'img[data-layer="{first["name"]}"]').first.click(position={"x": 1, "y": 1})
        row, col, _ = map(int, page.get_attribute("#field", "data-unit").split(","))
        assert (row, col) == (int(1 / 64 * first["shape"][0]), int(1 / 64 * first["shape"][1]))  # 64px maps
        top, left, bottom, right = map(int, page.get_attribute("#field", "data-box").split(","))
        field = first["channels"][0]["field"]
        size = data["model"]["input"][0]
        assert (top, left) == (max(0, field["start"][0] + row * field["jump"][0]),
                               max(0, field["start"][1] + col * field["jump"][1]))
        assert (bottom, right) == (min(size - 1, field["start"][0] + row * field["jump"][0] + field["size"][0] - 1),
                                   min(size - 1, field["start"][1] + col * field["jump"][1] + field["size"][1] - 1))
        # the head shows the real probabilities
        shown = [float(t) for t in page.locator(".top5 .prob").all_inner_texts()]
        assert shown == pytest.approx([t["probability"] for t in data["head"]["top"]], rel=1e-5)
        # switching the class switches Grad-CAM
        if "gradcam" in data["attribution"]:
            before = page.get_attribute("#gradcam-img", "src")
            page.select_option("#class-select", str(data["classes"][1]))
            after = page.get_attribute("#gradcam-img", "src")
            layer = data["attribution"]["gradcam"]["default"]
            maps = data["attribution"]["gradcam"]["maps"][layer]
            if maps[str(data["classes"][0])]["max"] != maps[str(data["classes"][1])]["max"]:
                assert before != after
            page.select_option("#class-select", str(data["classes"][0]))
        check_family(page, data)
        if screenshot is not None:
            page.locator("#overview").scroll_into_view_if_needed()
            page.screenshot(path=str(screenshot), clip={"x": 0, "y": 0, "width": 1280, "height": 900})
        assert browser.blocked == [], browser.blocked
        assert browser.errors == [], browser.errors
    finally:
        browser.close()


@pytest.mark.parametrize("name", SMALL)
def test_page_from_file_makes_no_request_and_shows_explain_json(playwright, tmp_path, name):
    page, data = make_page(name, tmp_path / name)
    check_page(playwright, page, data)


@pytest.mark.slow
@pytest.mark.parametrize("name", EVERY_FAMILY)
def test_page_of_every_family(playwright, tmp_path, name):
    page, data = make_page(name, tmp_path / name)
    check_page(playwright, page, data)


def test_upload_in_serve_mode(playwright, tmp_path):
    from PIL import Image

    from zoo.explain.serve import Explainer, make_server

    image, source = sample_image(0)
    explainer = Explainer(report.Request(spec=zoo.get_spec("lenet5"), image=image, image_source=source,
                                         methods=("saliency", "gradcam")))
    httpd = make_server(explainer, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    upload = tmp_path / "upload.png"
    drawn = np.zeros((28, 28), "uint8")
    drawn[4:24, 13:15] = 255
    Image.fromarray(drawn).save(upload)
    browser = Browser(playwright, base)
    try:
        page = browser.page
        page.goto(base + "/")
        page.wait_for_selector("body[data-ready='1']")
        page.set_input_files("#upload", str(upload))
        page.click("#upload-form button[type=submit]")
        page.wait_for_selector("body[data-explained='1']", timeout=60_000)
        assert "upload" in page.inner_text("#subtitle")
        # a unit that was not precomputed: the server computes it
        page.locator('img[data-layer="conv2"]').first.click(position={"x": 30, "y": 10})
        page.wait_for_selector(".trace .unit-model-value", timeout=30_000)
        value = float(page.locator(".trace .unit-value").first.inner_text())
        model_value = float(page.locator(".trace .unit-model-value").first.inner_text())
        assert value == pytest.approx(model_value, rel=1e-4, abs=1e-5)
        assert browser.blocked == [] and browser.errors == [], (browser.blocked, browser.errors)
    finally:
        browser.close()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
