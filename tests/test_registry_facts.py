"""registry.yaml states each fact once, and every variant still resolves to the facts it had before.

tests/data/registry_facts_before.json is `spec.model_dump(exclude_none=True)` of every variant, taken before the
registry gained family defaults and groups. The facts now resolve to the same values, apart from what changed
in how they are stated:
  - eval.mean / eval.std: no longer written (None: the dataset's own statistics, from zoo/data/catalogue.yaml);
    the values dropped are checked equal to the catalogue's for the variant's dataset, so every pipeline
    normalises exactly as before;
  - recipes: `{fashion_mnist: X, fashion_mnist_sample: X}` is now the pattern `{"fashion_mnist*": X}`;
    recipe_for() is checked to give the same recipe as before for every dataset of the catalogue;
  - group, keras_twin, weights: new fields (keras_twin moved from zoo.weights into the registry); a result's
    eval_protocol: new (the `zoo eval --protocol` each published number was measured with);
  - PROSE_FIXES: notes corrected since the snapshot (a named function that never existed), listed one by one;
  - arch.init: the paper's initialisation (issue 16), written where a variant's differs from its family's (ZFNet).
"""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pydantic import BaseModel

import cli
from zoo.models.features import feature_info
from zoo.data.catalogue import get_dataset, list_datasets
from zoo.registry import registry

ROOT = Path(__file__).resolve().parents[1]
BEFORE = json.loads((ROOT / "tests" / "data" / "registry_facts_before.json").read_text())
NEW_FIELDS = {"group", "keras_twin", "weights"}  # weights: named weights (issue 12)
NEW_RESULT_FIELDS = {"eval_protocol"}  # the zoo eval --protocol each published number was measured with (issue 16)
STATISTICS = ("mean", "std")
# zoo.weights.KERAS_APPLICATIONS as it was written out in Python before it was read from the registry.
KERAS_TWINS_BEFORE = {"vgg16": "VGG16", "vgg19": "VGG19", "resnet50": "ResNet50", "resnet101": "ResNet101",
                      "resnet152": "ResNet152", "densenet121": "DenseNet121", "densenet169": "DenseNet169",
                      "densenet201": "DenseNet201"}
# (model, field, text before, text now): wording fixed after the snapshot; every other fact must be unchanged.
PROSE_FIXES = [
    ("googlenet", "notes", "zoo.models.googlenet.inference_model(model)",
     'zoo.models.family_of("googlenet").inference_model(model)'),
    ("lenet5_original", "notes", "(logits), so softmax cross-entropy equals the paper's MAP criterion (eq. 9).",
     '(logits); the model trains with the paper\'s MAP criterion, eq. 9 with its e^-j "rubbish" class (arch.loss; '
     "zoo.training.losses.MAPCriterion), of which softmax cross-entropy on the logits is the form without e^-j."),
]
# eval mean/std that are a paper's fixed input scaling, not a dataset's statistics (issue 16): LeNet-5's -0.1/1.175,
# marked `eval.fixed` (newer than the snapshot) so that every dataset gets it.
FIXED_SCALINGS = {"lenet5_original": {"mean": [20.0], "std": [200.0]}}
# Published rows added since the snapshot (issue 16): the Fashion-MNIST benchmark's row for a comparable 2-conv net.
ADDED_RESULTS = {"lenet5": ["fashion_mnist"], "lenet5_original": ["fashion_mnist"]}
RECIPE_RENAMES = {"lenet_paper": "lenet_sgd"}  # a recipe renamed for what it is (issue 16: not the paper's SDLM)


def snapshot(name: str) -> dict:
    """The variant's facts before, with the listed prose fixes applied (each must still find its old text)."""
    before = dict(BEFORE[name])
    for model, field, old, new in PROSE_FIXES:
        if model == name:
            assert old in before[field]
            before[field] = before[field].replace(old, new)
    return before


def as_json(value):
    return json.loads(json.dumps(value))


def facts(spec) -> dict:
    """The spec's dump; `arch` as written (typed arch schemas fill in their defaults: not facts of the YAML)."""
    dump = spec.model_dump(exclude_none=True)
    if isinstance(spec.arch, BaseModel):
        dump["arch"] = spec.arch.model_dump(exclude_unset=True, exclude_none=True)
        dump["arch"].pop("init", None)  # newer than the snapshot (issue 16)
    return as_json(dump)


def comparable(dump: dict) -> dict:
    """The facts whose statement did not change: all but recipes, the new fields and the eval statistics."""
    kept = {k: v for k, v in dump.items() if k not in NEW_FIELDS | {"recipes"}}
    kept["eval"] = {k: v for k, v in dump.get("eval", {}).items() if k not in STATISTICS + ("fixed",)}
    added = ADDED_RESULTS.get(dump["name"], [])
    kept["results"] = [{k: v for k, v in r.items() if k not in NEW_RESULT_FIELDS} for r in dump.get("results", [])
                       if r["dataset"] not in added]
    return kept


# Variants added after the snapshot: they have no "before" to match (their facts are pinned by tests/test_models.py).
ADDED_SINCE = {"lenet5_harley"}


def test_the_snapshot_covers_every_variant():
    assert sorted(BEFORE) == sorted(set(registry().models) - ADDED_SINCE)


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_variant_resolves_to_the_facts_it_had(name):
    spec = registry().get(name)
    after, before = facts(spec), snapshot(name)
    assert comparable(after) == comparable(before)
    assert spec.params == spec.reference.params == before["params"] == before["reference"]["params"]


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_eval_statistics_are_the_datasets(name):
    spec, before = registry().get(name), BEFORE[name].get("eval", {})
    entry = get_dataset(spec.dataset)
    for key in STATISTICS:
        if name in FIXED_SCALINGS:
            assert getattr(spec.eval, key) == FIXED_SCALINGS[name][key] and spec.eval.fixed
            continue
        assert getattr(spec.eval, key) is None, f"{name}: eval.{key} restates the catalogue"
        if key in before:  # dropped from the registry: the catalogue must say the same
            assert before[key] == pytest.approx(list(getattr(entry, key))), (name, key)


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_recipe_for_every_dataset_is_unchanged(name):
    spec, before = registry().get(name), BEFORE[name]
    datasets = set(list_datasets()) | set(before.get("recipes", {})) | set(spec.recipes)
    for dataset in sorted(d for d in datasets if "*" not in d):
        was = before.get("recipes", {}).get(dataset, before["recipe"])
        assert spec.recipe_for(dataset) == RECIPE_RENAMES.get(was, was), (name, dataset)
    was = before.get("recipes", {}).get(before["dataset"], before["recipe"])
    assert spec.recipe_for() == RECIPE_RENAMES.get(was, was)


def test_keras_twins_come_from_the_registry():
    from zoo.weights import KERAS_APPLICATIONS

    assert list(KERAS_APPLICATIONS.items()) == list(KERAS_TWINS_BEFORE.items())  # the same order too
    assert {n: s.keras_twin for n, s in registry().models.items() if s.keras_twin} == KERAS_TWINS_BEFORE


def test_zoo_info_json_agrees_with_the_registry_and_the_snapshot():
    runner = CliRunner()
    reg = registry()
    for name in sorted(BEFORE):
        result = runner.invoke(cli.cli, ["info", name, "--json"])
        assert result.exit_code == 0, (name, result.output)
        shown = json.loads(result.output)
        spec = reg.get(name)
        assert shown.pop("recipe_details") == as_json(reg.recipe(spec.recipe).model_dump(exclude_none=True))
        stages = shown.pop("feature_stages")  # not a registry field: derived from the arch (zoo.feature_info)
        assert [(s["index"], s["layer"], s["channels"], s["stride"]) for s in stages] == [
            (f.index, f.layer, f.channels, f.stride) for f in feature_info(name)], name
        assert shown == as_json(spec.model_dump(exclude_none=True)), name
        shown["arch"] = facts(spec)["arch"]
        assert comparable(shown) == comparable(snapshot(name)), name


# -- each fact written once -------------------------------------------------------------------------------------


def raw_registry() -> dict:
    return yaml.safe_load((ROOT / "registry.yaml").read_text())


def restated(entry: dict, shared: dict) -> list[str]:
    """The fields (mapping keys included) an entry writes with the value its family or group already gives."""
    found = []
    for field, value in shared.items():
        mine = entry.get(field)
        if isinstance(value, dict) and isinstance(mine, dict):
            found += [f"{field}.{k}" for k, v in value.items() if mine.get(k) == v]
        elif mine == value:
            found.append(field)
    return found


def test_no_variant_restates_a_family_or_group_fact():
    doc = raw_registry()
    for name, entry in doc["models"].items():
        family = doc["families"][entry["family"]]
        layers = [family.get("defaults", {})] + ([family["groups"][entry["group"]]] if "group" in entry else [])
        for shared in layers:
            assert not restated(entry, shared), (name, restated(entry, shared))


def test_params_and_statistics_are_written_once():
    doc = raw_registry()
    for name, entry in doc["models"].items():
        assert "params" not in entry["reference"], f"{name}: reference.params restates params"
        if name not in FIXED_SCALINGS:
            assert not set(STATISTICS) & set(entry.get("eval", {})), f"{name}: eval mean/std belong to the catalogue"
    for family, value in doc["families"].items():
        for facts_ in [value.get("defaults", {})] + list(value.get("groups", {}).values()):
            assert not set(STATISTICS) & set(facts_.get("eval", {})), family

