"""The registry loads, validates and answers queries without TensorFlow; broken files fail with one clear line."""

import subprocess
import sys
import textwrap

import pytest

import zoo
from zoo.registry import Registry, RegistryError, UnknownModelError, load_registry

GOOD = textwrap.dedent("""
    families:
      lenet: {title: LeNet-5, builder: "zoo.models.lenet:build"}
    recipes:
      quick: {description: test, lr: 0.1, batch_size: 32, epochs: 1}
    models:
      tiny:
        family: lenet
        arch: {variant: modern, conv: [6, 16], kernel: 5, dense: [120, 84], activation: relu, pool: max}
        input: {size: 32, min_size: 16, channels: 1}
        classes: 10
        params: 61706
        macs: 416520
        paper: {title: T, authors: [A], year: 1998}
        dataset: mnist
        recipe: quick
        reference: {source: paper, params: 61706}
""")

STUDY = textwrap.dedent("""
    studies:
      small:
        description: test
        dataset: mnist
        models: [tiny]
        budgets: {cpu: {description: quick}}
        compare_with: COMPARE
""")


def test_good_registry_loads():
    reg = Registry.from_text(GOOD)
    assert reg.names() == ["tiny"]
    assert reg.get("tiny").input.min_size == 16
    assert reg.recipe("quick").epochs == 1


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("family: lenet", "family: lenet9"),
     r"model 'tiny': field 'family': unknown family 'lenet9'"),
    (lambda t: t.replace("    classes: 10\n", ""), r"model 'tiny': field 'classes': Field required"),
    (lambda t: t.replace("params: 61706\n", "params: lots\n"), r"model 'tiny': field 'params': .*integer"),
    (lambda t: t.replace("min_size: 16", "min_size: 64"), r"model 'tiny': field 'input': .*min_size 64 is larger"),
    (lambda t: t + t[t.index("  tiny:"):].replace("family: lenet", "family: lenet", 1),
     r"duplicate key 'tiny'"),
    (lambda t: t.replace('zoo.models.lenet:build', 'zoo.models.nonexistent:build'),
     r"family 'lenet': field 'builder': .*builder module 'zoo.models.nonexistent' does not exist"),
    (lambda t: t.replace('zoo.models.lenet:build', 'not a reference'),
     r"family 'lenet': field 'builder': .*must look like"),
    (lambda t: t.replace("recipe: quick", "recipe: slow"), r"model 'tiny': field 'recipe': unknown recipe 'slow'"),
    (lambda t: t.replace("dataset: mnist", "dataset: mnist\n    colour: blue"),
     r"model 'tiny': field 'colour': Extra inputs are not permitted"),
    (lambda t: t.replace("epochs: 1}", "epochs: 1, lr: 0.2}"), r"duplicate key 'lr'"),
    (lambda t: t.replace("lr: 0.1", "lr: -1"), r"recipe 'quick': field 'lr': .*greater than 0"),
    (lambda t: t.replace("models:", "modells:"), r"unknown top-level section 'modells'"),
    (lambda t: t.replace("  tiny:", "  Tiny-Net:"), r"model 'Tiny-Net': name must be lower-case"),
    (lambda t: t.replace("input: {size", "input: [size"), r"not valid YAML"),
    (lambda t: t + STUDY.replace("COMPARE", "{tiny: huge}"),
     r"study 'small': field 'compare_with.tiny': unknown model 'huge'"),
    (lambda t: t + STUDY.replace("COMPARE", "{other: tiny}"),
     r"study 'small': field 'compare_with.other': not one of the study's models"),
])
def test_broken_registry_names_entry_and_field(edit, message):
    with pytest.raises(RegistryError, match=message):
        Registry.from_text(edit(GOOD))


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("family: lenet", "family: lenet9"), "model 'tiny': field 'family': unknown family"),
    (lambda t: t.replace("    classes: 10\n", ""), "model 'tiny': field 'classes': Field required"),
])
def test_cli_reports_broken_registry_in_one_line(tmp_path, edit, message):
    path = tmp_path / "registry.yaml"
    path.write_text(edit(GOOD))
    proc = subprocess.run([sys.executable, "-c", "import cli, sys; sys.exit(cli.main(['list']))"],
                          capture_output=True, text=True, env={"ZOO_REGISTRY": str(path), "PATH": ""},
                          cwd=str(tmp_path.parent))
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr


def test_real_registry_is_consistent():
    reg = load_registry()
    assert len(reg.names()) >= 2
    for name in reg.names():
        spec = reg.get(name)
        assert spec.params == spec.reference.params, name
        assert spec.input.min_size <= spec.input.size
        assert spec.recipe in reg.recipes


def test_list_models_wildcards_and_natural_sort():
    names = zoo.list_models()
    assert names == sorted(names, key=lambda n: [int(t) if t.isdigit() else t
                                                 for t in __import__("re").split(r"(\d+)", n)])
    assert zoo.list_models("lenet*") == ["lenet5", "lenet5_harley", "lenet5_original"]
    assert zoo.list_models("lenet*", exclude="*original") == ["lenet5", "lenet5_harley"]
    assert zoo.list_models("lenet*", exclude=["*original", "*harley"]) == ["lenet5"]
    assert zoo.list_models(family="lenet") == ["lenet5", "lenet5_harley", "lenet5_original"]
    assert "lenet" in zoo.families()
    with pytest.raises(RegistryError, match="unknown family"):
        zoo.list_models(family="transformer")


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownModelError, match=r"unknown model 'lenet6'; did you mean lenet5"):
        zoo.get_spec("lenet6")
    assert zoo.get_spec("LeNet5").name == "lenet5"


def test_registry_import_does_not_import_tensorflow():
    code = ("import sys, zoo; zoo.list_models(); zoo.get_spec('lenet5'); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_merge_keys_may_be_overridden_but_not_repeated():
    text = GOOD.replace("models:", "defaults:\n  ev: &ev {resize: 256, crop: 224}\nmodels:").replace(
        "    recipe: quick\n", "    recipe: quick\n    eval: {<<: *ev, crop: 227}\n")
    assert Registry.from_text(text).get("tiny").eval.crop == 227
    with pytest.raises(RegistryError, match="duplicate key 'crop'"):
        Registry.from_text(text.replace("crop: 227}", "crop: 227, crop: 228}"))


# -- family defaults and groups: each fact written once ------------------------------------------------------

FAMILY = textwrap.dedent("""
    families:
      lenet:
        title: LeNet-5
        builder: "zoo.models.lenet:build"
        defaults:
          paper: {title: T, authors: [A], year: 1998, url: "http://example.org"}
          dataset: mnist
          recipe: quick
          recipes: {"fashion_mnist*": other}
          eval: {resize: 36, crop: 32}
        groups:
          small: {classes: 3, input: {size: 32, min_size: 16, channels: 1}}
    recipes:
      quick: {description: test, lr: 0.1, batch_size: 32, epochs: 1}
      other: {description: test, lr: 0.2, batch_size: 32, epochs: 1}
    models:
      tiny:
        family: lenet
        group: small
        arch: {variant: modern, conv: [6, 16], kernel: 5, dense: [120, 84], activation: relu, pool: max}
        params: 61706
        macs: 416520
        paper: {followed: Fig. 2}
        eval: {crop: 30}
        reference: {source: paper}
""")


def test_family_defaults_and_group_merge_under_the_variant():
    spec = Registry.from_text(FAMILY).get("tiny")
    assert (spec.dataset, spec.recipe, spec.classes, spec.input.size, spec.group) == ("mnist", "quick", 3, 32, "small")
    assert (spec.paper.title, spec.paper.url, spec.paper.followed) == ("T", "http://example.org", "Fig. 2")
    assert (spec.eval.resize, spec.eval.crop, spec.eval.mean) == (36, 30, None)  # key by key; mean: the dataset's
    assert spec.reference.params == spec.params == 61706  # stated once, as params
    own = Registry.from_text(FAMILY.replace("    eval: {crop: 30}\n", "    classes: 5\n    dataset: cifar10\n"))
    assert (own.get("tiny").classes, own.get("tiny").dataset) == (5, "cifar10")  # the variant's own value wins


def test_recipe_patterns_serve_a_dataset_and_its_sample():
    spec = Registry.from_text(FAMILY).get("tiny")
    assert spec.recipes == {"fashion_mnist*": "other"}
    assert [spec.recipe_for(d) for d in ("fashion_mnist", "fashion_mnist_sample", "mnist", None)] == \
        ["other", "other", "quick", "quick"]
    exact = Registry.from_text(FAMILY.replace("    eval: {crop: 30}\n", "    recipes: {fashion_mnist_sample: quick}\n"))
    assert exact.get("tiny").recipe_for("fashion_mnist_sample") == "quick"  # an exact key beats a pattern
    assert exact.get("tiny").recipe_for("fashion_mnist") == "other"


def test_reference_params_may_still_differ_where_written():
    text = FAMILY.replace("reference: {source: paper}", "reference: {source: paper, params: 60000}")
    assert Registry.from_text(text).get("tiny").reference.params == 60000


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("eval: {resize: 36, crop: 32}", "eval: {resize: 36, crop: big}"),
     r"family 'lenet': field 'defaults.eval.crop': .*integer"),
    (lambda t: t.replace("      dataset: mnist\n", "      dataset: mnist\n      colour: blue\n"),
     r"family 'lenet': field 'defaults.colour': Extra inputs are not permitted"),
    (lambda t: t.replace("recipe: quick", "recipe: slow"), r"family 'lenet': field 'defaults.recipe': unknown recipe 'slow'"),
    (lambda t: t.replace('{"fashion_mnist*": other}', '{"fashion_mnist*": slower}'),
     r"family 'lenet': field 'defaults.recipes.fashion_mnist\*': unknown recipe 'slower'"),
    (lambda t: t.replace("small: {classes: 3,", "small: {classes: 0,"),
     r"family 'lenet': field 'groups.small.classes': .*greater than 0"),
    (lambda t: t.replace("group: small", "group: cifar"),
     r"model 'tiny': field 'group': unknown group 'cifar' of family 'lenet' \(known: small\)"),
    (lambda t: t.replace("    group: small\n", ""), r"model 'tiny': field 'input': Field required"),
    (lambda t: t.replace("reference: {source: paper}", "reference: {source: paper}\n    keras_twin: not-a-name"),
     r"model 'tiny': field 'keras_twin': String should match pattern"),
])
def test_broken_family_facts_name_the_family_or_entry_and_field(edit, message):
    with pytest.raises(RegistryError, match=message):
        Registry.from_text(edit(FAMILY))


def test_anchors_section_holds_shared_blocks():
    text = GOOD.replace("models:", "anchors:\n  ev: &ev {resize: 256, crop: 224}\nmodels:").replace(
        "    recipe: quick\n", "    recipe: quick\n    eval: *ev\n")
    assert Registry.from_text(text).get("tiny").eval.resize == 256
