"""The carry kit for the GPU machines lent here: everything they lack, under 64 MiB with the working tree.

Those machines have Python 3.12, JAX (CUDA), PyTorch, numpy, h5py, rich, click, pyyaml, pillow, matplotlib,
tensorboard and onnx, but no TensorFlow, no Keras and no network. The zoo runs there on Keras' JAX backend with
the numpy input path (zoo/data/arrays.py); this script assembles what that needs in build/gpu-kit/ (ignored by git;
never commit wheels):

    wheels/      Python 3.12 manylinux wheels of CARRIED (pure Python or small), at the versions installed here
    data/raw/fashion_mnist/   the four Fashion-MNIST IDX files (gzipped), as the numpy path reads them
    kit.json     what is carried, its sizes, and what is assumed present (ASSUMED)

    python scripts/gpu_kit.py build [--fashion-mnist /usr/share/datasets/fashion-mnist]   # here, with network
    python scripts/gpu_kit.py install                                                     # there, offline

`install` puts the wheels into build/gpu-kit/site with `pip install --no-index --no-deps --target` (offline, in
seconds, no write outside the tree) and checks that every import the zoo needs works; `env` prints the PYTHONPATH,
KERAS_BACKEND and ZOO_DATA_DIR that make the zoo use it. scripts/gpu_acceptance.py calls both.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / "build" / "gpu-kit"
WHEELS, SITE, DATA = KIT / "wheels", KIT / "site", KIT / "data"
LIMIT_MB = 64  # what travels with the working tree, kit included
PYTHON = "3.12"
# manylinux2014 (glibc 2.17) first; some wheels (optree) ship only for glibc 2.28, which any CUDA 13 host exceeds.
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")

# What the zoo imports on Keras' JAX backend that the GPU machines lack (distribution name -> import name):
# Keras and its small dependencies, pydantic (the registry's schemas) with its own, psutil (bench memory).
CARRIED = {"keras": "keras", "namex": "namex", "optree": "optree", "absl-py": "absl", "pydantic": "pydantic",
           "pydantic-core": "pydantic_core", "annotated-types": "annotated_types",
           "typing-inspection": "typing_inspection", "typing-extensions": "typing_extensions", "psutil": "psutil"}
# Present there (the list, plus what JAX and matplotlib depend on): checked by `install`, not carried.
ASSUMED = {"numpy": "numpy", "h5py": "h5py", "rich": "rich", "click": "click", "pyyaml": "yaml", "pillow": "PIL",
           "matplotlib": "matplotlib", "jax": "jax", "ml-dtypes": "ml_dtypes", "packaging": "packaging"}
FASHION_MNIST = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"]


class KitError(Exception):
    """A kit that cannot be built or installed; the message says why in one line."""


def _mb(nbytes: int) -> float:
    return round(nbytes / 2 ** 20, 2)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def tree_size() -> int:
    """Bytes of the working tree that travels (tracked and untracked-not-ignored files, the kit aside)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.split(b"\0")
    return sum((ROOT / name.decode()).stat().st_size for name in listed
               if name and (ROOT / name.decode()).is_file())


def pinned(distribution: str) -> str:
    """'name==version' at the version installed here (the one the tests ran with)."""
    try:
        return f"{distribution}=={importlib.metadata.version(distribution)}"
    except importlib.metadata.PackageNotFoundError:
        raise KitError(f"{distribution} is not installed here: install the zoo first (pip install -e '.[test]')")


def download_wheels(target: Path) -> None:
    """Python 3.12 manylinux wheels, no dependencies resolved (the list is complete by design; `install` checks)."""
    target.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--no-deps",
               "--python-version", PYTHON, *(f"--platform={p}" for p in PLATFORMS), "--implementation", "cp",
               "--dest", str(target),
               *(pinned(d) for d in CARRIED)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise KitError(f"pip download failed: {done.stderr.strip().splitlines()[-1] if done.stderr else '?'}")


def copy_fashion_mnist(source: Path, target: Path) -> None:
    missing = [name for name in FASHION_MNIST if not (source / name).is_file()]
    if missing:
        raise KitError(f"{source}: missing {', '.join(missing)} (the gzipped Fashion-MNIST IDX files)")
    target.mkdir(parents=True, exist_ok=True)
    for name in FASHION_MNIST:
        shutil.copyfile(source / name, target / name)


def build(fashion_mnist: Path) -> dict:
    """Assemble the kit (replacing an older one) and check the 64 MiB budget; returns kit.json's content."""
    if KIT.exists():
        shutil.rmtree(KIT)
    download_wheels(WHEELS)
    copy_fashion_mnist(fashion_mnist, DATA / "raw" / "fashion_mnist")
    wheels = sorted(p.name for p in WHEELS.glob("*.whl"))
    sizes = {"wheels_mb": _mb(_size(WHEELS)), "data_mb": _mb(_size(DATA)), "tree_mb": _mb(tree_size())}
    sizes["total_mb"] = round(sum(sizes.values()), 2)
    facts = {"python": PYTHON, "platforms": list(PLATFORMS), "carried": {d: pinned(d) for d in CARRIED},
             "wheels": wheels, "assumed_present": sorted(ASSUMED), "data": {"fashion_mnist": FASHION_MNIST},
             **sizes, "limit_mb": LIMIT_MB}
    (KIT / "kit.json").write_text(json.dumps(facts, indent=2) + "\n")
    if sizes["total_mb"] > LIMIT_MB:
        raise KitError(f"the kit and the tree are {sizes['total_mb']} MiB, over the {LIMIT_MB} MiB that travel")
    return facts


def environment() -> dict:
    """The variables that make the zoo run from the kit: its site first on the path, JAX, the kit's data dir."""
    path = os.pathsep.join(filter(None, [str(SITE), str(ROOT), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "KERAS_BACKEND": "jax", "ZOO_DATA_DIR": str(DATA)}


def check_imports(names: dict) -> dict[str, str]:
    """{distribution: version or 'MISSING'} for each import name, importing them in this process."""
    found = {}
    for distribution, module in names.items():
        try:
            imported = importlib.import_module(module)
            found[distribution] = str(getattr(imported, "__version__", None)
                                      or importlib.metadata.version(distribution))
        except Exception:  # noqa: BLE001 - any failure means the same: not usable
            found[distribution] = "MISSING"
    return found


def install() -> dict:
    """Install the carried wheels offline into build/gpu-kit/site and check every import; returns what it found."""
    wheels = sorted(WHEELS.glob("*.whl"))
    if not wheels:
        raise KitError(f"no wheels in {WHEELS}: run `python scripts/gpu_kit.py build` on a machine with network")
    if not SITE.is_dir():
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                   "--disable-pip-version-check", "--target", str(SITE), *map(str, wheels)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            shutil.rmtree(SITE, ignore_errors=True)
            raise KitError(f"offline install failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    sys.path.insert(0, str(SITE))
    report = {"carried": check_imports(CARRIED), "assumed_present": check_imports(ASSUMED)}
    missing = [d for part in report.values() for d, v in part.items() if v == "MISSING"]
    if missing:
        raise KitError(f"not importable after the install: {', '.join(missing)}")
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("build", help="assemble build/gpu-kit (needs the package index)")
    make.add_argument("--fashion-mnist", type=Path, default=Path("/usr/share/datasets/fashion-mnist"),
                      help="folder with the gzipped Fashion-MNIST IDX files")
    sub.add_parser("install", help="offline install into build/gpu-kit/site and check the imports")
    sub.add_parser("env", help="print the environment variables that use the kit (shell syntax)")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            facts = build(args.fashion_mnist)
            print(f"gpu kit: {len(facts['wheels'])} wheels {facts['wheels_mb']} MiB + data {facts['data_mb']} MiB "
                  f"+ tree {facts['tree_mb']} MiB = {facts['total_mb']} MiB (limit {LIMIT_MB}) in {KIT}")
        elif args.command == "install":
            print(json.dumps(install(), indent=2))
        else:
            for key, value in environment().items():
                print(f"export {key}={value}")
    except KitError as e:
        print(f"gpu_kit: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
