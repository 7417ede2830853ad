#!/usr/bin/env python3
"""Regenerate docs/explain-<variant>.png: one `zoo explain` page per family, photographed by Playwright driving
Debian's chromium (the same set-up as tests/test_explain_page.py).

    .venv/bin/python scripts/explain_screenshots.py [variant ...]
"""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = ["lenet5_harley", "alexnet", "zfnet", "vgg11", "googlenet", "resnet18", "densenet121"]


def shoot(name: str, folder: Path, out: Path) -> None:
    import io

    from PIL import Image
    from playwright.sync_api import sync_playwright

    import zoo
    from zoo.explain import report
    from zoo.explain.images import sample_image

    image, source = sample_image(3)
    page_path = report.write(report.explain(report.Request(spec=zoo.get_spec(name), image=image,
                                                           image_source=source)), folder / name)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 760})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
        page.goto(page_path.resolve().as_uri())
        page.wait_for_selector("body[data-ready='1']")
        page.select_option("#unit-select", index=1)
        page.locator("#unit").scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, -60)")
        shot = page.screenshot()
        browser.close()
    # a 256-colour palette keeps the PNGs small for the repository
    Image.open(io.BytesIO(shot)).convert("RGB").quantize(256).save(out, optimize=True)
    print(f"{out} ({out.stat().st_size // 1024} KB)")


def main(names):
    with tempfile.TemporaryDirectory() as tmp:
        for name in names or VARIANTS:
            shoot(name, Path(tmp), ROOT / "docs" / f"explain-{name}.png")


if __name__ == "__main__":
    main(sys.argv[1:])
