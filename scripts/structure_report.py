"""Structure figures for the closing note of a refactor: lines per file, the longest functions, and how many
places declare each option and enumeration. Reads the source as text (no imports of the zoo).

    python scripts/structure_report.py            # all three sections
    python scripts/structure_report.py --top 15
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["zoo", "cli.py"]

# Literal values whose declaration sites are counted: a place is a line that spells the whole set out.
ENUMERATIONS = {
    "precisions": ["float32", "mixed_bfloat16", "mixed_float16"],
    "strategies": ["default", "mirrored", "multi-worker"],
    "augmentations": ["pad_crop_flip", "inception_crop_flip", "scale_crop_flip"],
    "interpolations": ["bilinear", "bicubic", "nearest", "area"],
    "schedule kinds": ["constant", "step", "cosine", "linear"],
    "pooling": ["avg", "max"],
}
OPTIONS = ["epochs", "max_steps", "steps_per_epoch", "batch_size", "lr", "seed", "precision", "xla",
           "steps_per_execution", "strategy", "image_size", "dataset", "recipe", "data_dir"]


def python_files():
    for entry in SOURCES:
        path = ROOT / entry
        yield from ([path] if path.is_file() else sorted(path.rglob("*.py")))


def lines_per_file():
    rows = [(len(p.read_text().splitlines()), p.relative_to(ROOT)) for p in python_files()]
    rows.append((len((ROOT / "registry.yaml").read_text().splitlines()), Path("registry.yaml")))
    return sorted(rows, reverse=True)


def longest_functions(top: int):
    found = []
    for path in python_files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((node.end_lineno - node.lineno + 1, len(node.args.args) + len(node.args.kwonlyargs),
                              f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)[:top]


def enumeration_sites():
    out = {}
    for label, values in ENUMERATIONS.items():
        sites = []
        for path in python_files():
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if all(re.search(rf"[\"']{re.escape(v)}[\"']", line) for v in values):
                    sites.append(f"{path.relative_to(ROOT)}:{number}")
        out[label] = sites
    return out


def option_sites():
    """Where a training option is declared: a click option, or a parameter of a function taking most of them."""
    out = {name: [] for name in OPTIONS}
    for path in python_files():
        text = path.read_text()
        for name in OPTIONS:
            flag = "--" + name.replace("_", "-")
            for number, line in enumerate(text.splitlines(), 1):
                if re.search(rf"click\.option\(\s*[\"']{re.escape(flag)}[\"'/]", line):
                    out[name].append(f"{path.relative_to(ROOT)}:{number} (click)")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                if isinstance(node, ast.FunctionDef):
                    params = {a.arg for a in node.args.args + node.args.kwonlyargs}
                else:
                    params = {t.target.id for t in node.body if isinstance(t, ast.AnnAssign)
                              and isinstance(t.target, ast.Name)}
                if len(params & set(OPTIONS)) >= 8:  # a signature that restates the option list
                    for name in params & set(OPTIONS):
                        out[name].append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    rows = lines_per_file()
    print(f"## Lines per file ({sum(n for n, _ in rows):,} in all)")
    for n, path in rows:
        print(f"{n:6d}  {path}")
    print(f"\n## The {args.top} longest functions (lines, parameters)")
    for n, params, where in longest_functions(args.top):
        print(f"{n:5d} {params:3d}  {where}")
    print("\n## Enumerations: places that spell the whole set out")
    for label, sites in enumeration_sites().items():
        print(f"{label}: {len(sites)}  {', '.join(sites)}")
    print("\n## Training options: places that declare them")
    for name, sites in option_sites().items():
        print(f"{name}: {len(sites)}  {', '.join(sites)}")


if __name__ == "__main__":
    main()
