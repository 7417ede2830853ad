"""The typed arch schemas (zoo/archs.py): every registry entry's arch is its family's schema, dumps as written, and
a bad arch fails when registry.yaml loads, in one line naming the entry and the field (no TensorFlow needed)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from zoo import archs
from zoo.registry import Registry, RegistryError, registry, registry_path

BEFORE = json.loads((Path(__file__).parent / "data" / "registry_facts_before.json").read_text())


def text_with_arch(name: str, arch: dict) -> str:
    """The text of the real registry.yaml with entry `name`'s `arch:` (one line or a block) replaced by `arch`."""
    text = registry_path().read_text()
    entry = re.compile(rf"^  {name}:\n", re.M).search(text, text.index("\nmodels:\n"))
    line = re.compile(r"^    arch:.*\n(?:(?:      .*|[ \t]*)\n)*", re.M).search(text, entry.end())
    return text[:line.start()] + f"    arch: {json.dumps(arch)}\n" + text[line.end():]


def registry_with_arch(name: str, arch: dict) -> Registry:
    return Registry.from_text(text_with_arch(name, arch), Path("registry.yaml"))


def load_error(name: str, **changes) -> str:
    arch = {**registry().get(name).arch.model_dump(), **changes}
    with pytest.raises(RegistryError) as error:
        registry_with_arch(name, arch)
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("name", registry().names())
def test_arch_is_the_family_schema_and_dumps_as_written(name):
    spec = registry().get(name)
    assert isinstance(spec.arch, archs.ArchSchema)
    assert archs.parse_arch(spec.family, spec.arch.model_dump()) == spec.arch
    written = BEFORE[name]["arch"] if name in BEFORE else None  # variants added since the snapshot: no "before"
    dumped = {k: v for k, v in spec.model_dump()["arch"].items() if k != "init"}  # `init` (issue 16) came later
    assert written is None or json.loads(json.dumps(dumped)) == written


def test_helper_replaces_exactly_one_arch():
    arch = registry().get("alexnet").arch.model_dump()
    assert registry_with_arch("alexnet", arch).get("alexnet").arch == registry().get("alexnet").arch
    changed = registry_with_arch("zfnet", {**registry().get("zfnet").arch.model_dump(), "dropout": 0.25})
    assert changed.get("zfnet").arch.dropout == 0.25 and changed.get("alexnet").arch.dropout == 0.5


def test_schemas_cover_the_registry_families():
    assert set(archs.SCHEMAS) == set(registry().families)


# ---------------------------------------------------------------------------------------------------------------
# The constraints the builders checked at build time, now checked at load time (same meaning, one line each)


def test_resnet_arch_errors():
    where = "registry.yaml: model 'resnet20': field"
    assert load_error("resnet20", width=3) == f"{where} 'arch.width': unknown key (did you mean 'widths'?)"
    assert load_error("resnet20", block="dense").startswith(f"{where} 'arch.block': Input should be 'basic' or "
                                                            f"'bottleneck'")
    assert load_error("resnet20", depths=[3, 3]) == (f"{where} 'arch.depths': 2 entries, but widths has 3: one "
                                                     f"entry per stage")
    assert load_error("resnet20", depths=[3, 0, 3]).startswith(f"{where} 'arch.depths.1': Input should be greater")
    assert load_error("resnet20", stem="mnist").startswith(f"{where} 'arch.stem': Input should be 'imagenet' or")
    assert load_error("resnet20", shortcut="identity").startswith(f"{where} 'arch.shortcut'")
    assert load_error("resnet20", expansion=2) == (f"{where} 'arch.expansion': applies to bottleneck blocks only; "
                                                   f"this arch has basic blocks")
    assert "cannot narrow the widths [16, 32, 8]" in load_error("resnet20", widths=[16, 32, 8])


def test_densenet_arch_errors():
    where = "registry.yaml: model 'densenet40_k12': field"
    assert load_error("densenet40_k12", stem="mnist").startswith(f"{where} 'arch.stem': Input should be "
                                                                 f"'imagenet' or 'cifar'")
    assert load_error("densenet40_k12", compression=0) == f"{where} 'arch.compression': Input should be greater than 0"
    assert load_error("densenet40_k12", compression=1.5).startswith(f"{where} 'arch.compression': Input should be "
                                                                    f"less than or equal to 1")
    assert load_error("densenet40_k12", blocks=[]).startswith(f"{where} 'arch.blocks': List should have at least 1")
    assert load_error("densenet40_k12", dropout=1.0).startswith(f"{where} 'arch.dropout': Input should be less")


def test_alexnet_arch_errors():
    where = "registry.yaml: model 'alexnet': field"
    assert load_error("alexnet", norm="sideways") == (f"{where} 'arch.norm': Input should be 'before_pool' or "
                                                      f"'after_pool'")
    conv = registry().get("alexnet").arch.model_dump()["conv"]
    assert load_error("alexnet", conv=[{**conv[0], "groups": 5}, *conv[1:]]) == (
        f"{where} 'arch.conv.0.groups': 5 groups do not divide 96 filters")
    assert load_error("alexnet", conv=[conv[0], {**conv[1], "groups": 7, "filters": 14}]) == (
        f"{where} 'arch.conv': layer 1: 7 groups do not divide its 96 input maps")
    assert load_error("alexnet", conv=[{**conv[0], "pool": "full"}]).startswith(f"{where} 'arch.conv.0.pool'")
    assert load_error("alexnet", lrn={"size": 4}) == (f"{where} 'arch.lrn.size': must be odd (a window centred on "
                                                      f"each channel), got 4")


def test_vgg_arch_errors():
    where = "registry.yaml: model 'vgg11': field"
    assert load_error("vgg11", depths=[1, 1], widths=[64]) == (f"{where} 'arch.depths': 2 entries, but widths has "
                                                               f"1: one entry per stage")
    assert load_error("vgg11", dropout=-0.1).startswith(f"{where} 'arch.dropout': Input should be greater")


def test_googlenet_arch_errors():
    where = "registry.yaml: model 'googlenet': field"
    arch = registry().get("googlenet").arch.model_dump()
    assert load_error("googlenet", aux={**arch["aux"], "after": ["4a", "4f"]}) == (
        f"{where} 'arch.aux': after: '4f' is not a module (modules: 3a, 3b, 4a, 4b, 4c, 4d, 4e, 5a, 5b)")
    assert load_error("googlenet", aux={**arch["aux"], "after": ["4a", "4a"]}) == (
        f"{where} 'arch.aux': after: a module is named twice")
    stages = {**arch["stages"], "3": {"a": [64, 96, 128, 16, 32]}}
    assert load_error("googlenet", stages=stages).startswith(f"{where} 'arch.stages.3.a': List should have at "
                                                             f"least 6 items")
    assert load_error("googlenet", stages={**arch["stages"], "4": {}}).startswith(f"{where} 'arch.stages.4'")
    assert load_error("googlenet", stem={"conv1": 64}).startswith(f"{where} 'arch.stem.conv2_reduce': Field required")


def test_lenet_arch_errors():
    where = "registry.yaml: model 'lenet5'"
    assert "does not match any of the expected tags: 'modern', 'original'" in load_error("lenet5", variant="new")
    modern = registry().get("lenet5").arch.model_dump()
    with pytest.raises(RegistryError, match=rf"^{where}: field 'arch.kernel': Field required$"):
        registry_with_arch("lenet5", {k: v for k, v in modern.items() if k != "kernel"})
    assert load_error("lenet5", pool="min").startswith(f"{where}: field 'arch.pool': Input should be 'max' or 'avg'")
    assert load_error("lenet5", c1=6).startswith(f"{where}: field 'arch.c1': unknown key (the keys here: variant, "
                                                 f"conv, kernel, ")  # nothing close: the keys it may have
    table = registry().get("lenet5_original").arch.c3_table
    assert load_error("lenet5_original", c3_table=[*table[:-1], [0, 6]]) == (
        "registry.yaml: model 'lenet5_original': field 'arch.c3_table': row 15 refers to S2 map 6, but c1 makes "
        "only 6 maps")


def misspelt(name: str, path: tuple, wrong: str) -> str:
    """The load error of entry `name` with the arch key at `path` (its last part the right name) renamed `wrong`."""
    arch = registry().get(name).arch.model_dump()
    *inside, right = path
    mapping = arch
    for part in inside:
        mapping = mapping[part]
    mapping[wrong] = mapping.pop(right)
    with pytest.raises(RegistryError) as error:
        registry_with_arch(name, arch)
    return str(error.value)


@pytest.mark.parametrize("name, path, wrong, field", [
    ("resnet20", ("widths",), "widhts", "arch.widhts"),  # a required key: its "Field required" is not the report
    ("resnet20", ("shortcut",), "shortcutt", "arch.shortcutt"),  # an optional one
    ("lenet5", ("kernel",), "kernal", "arch.kernal"),  # inside a variant of a discriminated union
    ("alexnet", ("conv", 0, "filters"), "filtres", "arch.conv.0.filtres"),  # in a list of layers
    ("googlenet", ("aux", "dropout"), "dropuot", "arch.aux.dropuot"),  # in a nested block
    ("densenet40_k12", ("growth_rate",), "growthrate", "arch.growthrate"),
])
def test_a_misspelt_arch_key_is_named_with_the_close_name(name, path, wrong, field):
    assert misspelt(name, path, wrong) == (f"registry.yaml: model '{name}': field '{field}': unknown key (did you "
                                           f"mean '{path[-1]}'?)")


def test_the_cli_reports_a_misspelt_arch_key_in_one_line(tmp_path):
    arch = registry().get("resnet20").arch.model_dump()
    arch["dpeths"] = arch.pop("depths")
    bad = tmp_path / "registry.yaml"
    bad.write_text(text_with_arch("resnet20", arch))
    proc = subprocess.run([sys.executable, "-c", "import cli, sys; sys.exit(cli.main(['info', 'resnet20']))"],
                          capture_output=True, text=True, env={"ZOO_REGISTRY": str(bad), "PATH": ""},
                          cwd=str(tmp_path.parent), timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert line.endswith("model 'resnet20': field 'arch.dpeths': unknown key (did you mean 'depths'?)"), line


def test_unknown_family_is_reported_on_the_family():
    text = registry_path().read_text()
    entry = text.index("\n  lenet5:\n", text.index("\nmodels:\n"))
    bad = text[:entry] + text[entry:].replace("family: lenet", "family: lenet9", 1)
    with pytest.raises(RegistryError, match=r"model 'lenet5': field 'family': unknown family 'lenet9' \(known: "):
        Registry.from_text(bad, Path("registry.yaml"))
