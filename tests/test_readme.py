"""The README's model table is the output of `zoo list --markdown`; its two commands stay what CI runs."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_block(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\n```bash\n(.+?)\n```", text, re.S)
    assert match, f"README has no {marker} block"
    return match.group(1)


def test_models_table_is_current():
    text = (ROOT / "README.md").read_text()
    table = re.search(r"<!-- models-table:start -->\n(.*?)<!-- models-table:end -->", text, re.S).group(1)
    fresh = subprocess.run([sys.executable, "-c", "import sys, cli; sys.exit(cli.main(['list', '--markdown']))"],
                           capture_output=True, text=True, check=True).stdout
    assert table == fresh, "README model table is stale: run `python scripts/update_docs.py`"


def test_ci_runs_the_readme_test_command():
    command = readme_block("test-command")
    assert "pytest" in command
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test-command" in ci  # .ci/run extracts and runs that block verbatim


def test_main_command_uses_the_installed_cli():
    assert ".venv/bin/zoo" in readme_block("main-command")
