#!/usr/bin/env python3
"""Regenerate the screenshots of docs/explain.md: one `zoo explain` page per family, photographed by Playwright
driving Debian's chromium (the same set-up as tests/test_explain_page.py), with the variant's shipped weights
where it has them, else random ones.

    docs/explain-<variant>.png          the unit detail: a precomputed unit's receptive field and arithmetic
    docs/explain-<variant>-family.png   section 8, the family's own structures (where it has any)

    .venv/bin/python scripts/explain_screenshots.py [variant ...]
"""

import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = ["lenet5_harley", "lenet5_original", "alexnet", "zfnet", "vgg11", "googlenet", "resnet18", "densenet121"]
WIDTH, HEIGHT = 1100, 760
MAX_FAMILY_HEIGHT = 1200


def make_page(name: str, folder: Path) -> tuple[Path, dict]:
    import zoo
    from zoo.explain import report
    from zoo.explain.images import sample_image

    spec = zoo.get_spec(name)
    shipped = [tag for tag, entry in spec.weights.items() if entry.source == "shipped"]
    image, source = sample_image(3)
    result = report.explain(report.Request(spec=spec, image=image, image_source=source,
                                           weights=shipped[0] if shipped else None))
    return report.write(result, folder / name), result.data


def save(shot: bytes, out: Path) -> None:
    from PIL import Image

    # a 256-colour palette keeps the PNGs small for the repository
    Image.open(io.BytesIO(shot)).convert("RGB").quantize(256).save(out, optimize=True)
    print(f"{out} ({out.stat().st_size // 1024} KB)")


def has_structures(data: dict) -> bool:
    family = data["family"]
    return any(family[key] for key in ("connection_tables", "towers", "lrn", "inception", "residual", "dense"))


def shoot(name: str, folder: Path, docs: Path) -> None:
    from playwright.sync_api import sync_playwright

    page_path, data = make_page(name, folder)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
        page.goto(page_path.resolve().as_uri())
        page.wait_for_selector("body[data-ready='1']")
        page.select_option("#unit-select", index=1)
        page.locator("#unit").scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, -60)")
        save(page.screenshot(), docs / f"explain-{name}.png")
        if has_structures(data):
            page.evaluate("document.querySelector('nav').style.position = 'static'")  # not over the section
            box = page.evaluate("(() => { const r = document.getElementById('family').getBoundingClientRect(); "
                                "return {x: r.left, y: r.top + window.scrollY, width: r.width, height: r.height}; })()")
            box["height"] = min(box["height"], MAX_FAMILY_HEIGHT)  # DenseNet-121's four blocks: the first ones
            save(page.screenshot(full_page=True, clip=box), docs / f"explain-{name}-family.png")
        browser.close()


def main(names):
    with tempfile.TemporaryDirectory() as tmp:
        for name in names or VARIANTS:
            shoot(name, Path(tmp), ROOT / "docs")


if __name__ == "__main__":
    main(sys.argv[1:])
