#!/usr/bin/env python3
"""The TensorBoard screenshots of docs/training.md: two short real runs of LeNet-5 on the embedded sample (the
recipe's lr and a quarter of it), TensorBoard started locally on their folders, and Debian's chromium driven by
Playwright: the train and validation curves side by side, then the HParams table that compares the runs.

    python scripts/tensorboard_screenshots.py            # trains into a temporary folder (about a minute each)
    python scripts/tensorboard_screenshots.py --logdir runs/tb --no-train

TensorBoard serves its whole frontend itself; every request that is not to the local server is aborted and
counted (none, with TensorBoard 2.21), so no network is needed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("ZOO_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
RUNS = {"lenet5-lr2e-3": [], "lenet5-lr5e-4": ["--lr", "5e-4"]}


def train(logdir: Path) -> None:
    for name, extra in RUNS.items():
        subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", "lenet5", "--no-xla", "-q", "--no-record",
                        "--output", str(logdir / name), *extra], check=True,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(logdir: Path, port: int) -> subprocess.Popen:
    tensorboard = Path(sys.executable).with_name("tensorboard")
    server = subprocess.Popen([str(tensorboard), "--logdir", str(logdir), "--port", str(port), "--host",
                               "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=2)
            return server
        except OSError:
            time.sleep(1)
    server.kill()
    raise SystemExit("TensorBoard did not start within two minutes")


def screenshots(base: str, curves: Path, hparams: Path) -> list[str]:
    from playwright.sync_api import sync_playwright

    external: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1180})

        def local_only(route):
            if route.request.url.startswith("http://127.0.0.1"):
                route.continue_()
            else:
                external.append(route.request.url)
                route.abort()

        page.route("**/*", local_only)
        page.goto(base + "/?darkMode=false#timeseries")
        page.wait_for_timeout(6000)
        for placeholder, pattern in (("Filter runs (regex)", "(train|validation)$"),
                                     ("Filter tags (regex)", "epoch_(accuracy|loss)$")):
            box = page.locator(f"input[placeholder='{placeholder}']")
            box.fill(pattern)
            box.press("Enter")
            box.press("Escape")
        page.wait_for_timeout(1500)
        if page.get_by_text("Horizontal Axis").is_visible():  # the settings pane: its room goes to the charts
            page.locator("button[aria-label='Toggle settings side pane']").click()
        shown = 0
        for button in page.locator("button[aria-label='Toggle full size mode']").all():
            if shown < 2 and button.is_visible():
                button.click()
                shown += 1
                page.wait_for_timeout(800)
        page.wait_for_timeout(3000)
        page.screenshot(path=str(curves))
        page.set_viewport_size({"width": 1400, "height": 300})
        page.goto(base + "/?darkMode=false#hparams")
        page.wait_for_timeout(6000)
        for name in ("augment", "batch_size", "dataset", "epochs", "image_size", "lr", "model", "train_split",
                     "train loss", "val loss", "train accuracy"):  # toggled: the columns that differ stay
            page.locator("paper-checkbox", has_text=name).first.click()
            page.wait_for_timeout(200)
        page.wait_for_timeout(2000)
        page.screenshot(path=str(hparams))
        browser.close()
    return external


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", type=Path, help="Run folders to show (default: a temporary one, trained now).")
    parser.add_argument("--no-train", action="store_true", help="Use the run folders in --logdir as they are.")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    logdir = args.logdir or Path(tempfile.mkdtemp(prefix="zoo-tensorboard-"))
    if not args.no_train:
        train(logdir)
    port = free_port()
    server = serve(logdir, port)
    try:
        external = screenshots(f"http://127.0.0.1:{port}", args.docs / "tensorboard-lenet5.png",
                               args.docs / "tensorboard-hparams.png")
    finally:
        server.terminate()
    print(f"wrote {args.docs / 'tensorboard-lenet5.png'} and {args.docs / 'tensorboard-hparams.png'}; requests "
          f"outside 127.0.0.1: {len(external)}")


if __name__ == "__main__":
    main()
