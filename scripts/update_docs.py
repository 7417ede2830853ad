#!/usr/bin/env python3
"""Regenerate every registry-fed table in the README and docs/ (run after editing registry.yaml).

    python scripts/update_docs.py
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def zoo_output(*args: str) -> str:
    code = "import sys; from zoo import cli; sys.exit(cli.main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout


def update_readme() -> None:
    readme = ROOT / "README.md"
    table = zoo_output("list", "--markdown")
    text = re.sub(r"(<!-- models-table:start -->\n).*?(<!-- models-table:end -->)",
                  lambda m: m.group(1) + table + m.group(2), readme.read_text(), flags=re.S)
    readme.write_text(text)


def update_generated_docs() -> None:
    """docs/architectures.md, the charts and docs/results-<dataset>.md from the committed results store."""
    zoo_output("table", "docs", "--results", str(ROOT / "docs" / "runs"))
    subprocess.run([sys.executable, "-m", "zoo.models.features", str(ROOT / "docs" / "features.md")], cwd=ROOT,
                   check=True, capture_output=True)  # the per-variant feature stages


if __name__ == "__main__":
    update_readme()
    update_generated_docs()
    print("README.md and docs/ tables regenerated")
