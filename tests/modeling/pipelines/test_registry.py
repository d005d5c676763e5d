"""MODEL.PIPELINE picks the pipeline from the registry; build_pipeline loads no weights, the engine does."""
import pytest
import torch

from core.config import load_config
from core.engine.trained_run import load_pretrained_parts
from core.registry import PIPELINES, RegistryError
from modeling.pipelines import PipelineConfigError, build_pipeline

IMAGES = ["MODEL.BACKBONE.NAME", "resnet", "MODEL.BACKBONE.DEPTH", "18", "DATASETS.MODE", "images"]
SINGLE_LINEAR = ["MODEL.LIFTER.NAME", "linear", "DATASETS.VIEWS", "single", "MODEL.LIFTER.LINEAR.HIDDEN", "16"]
REFINED = ["MODEL.PIPELINE", "refined", *SINGLE_LINEAR, "MODEL.REFINER.NAME", "erd", "MODEL.REFINER.STAGES", "2",
           "MODEL.REFINER.HIDDEN", "16", "SOLVER.MAX_EPOCHS", "2"]
DETECT_AND_LIFT = ["MODEL.PIPELINE", "detect_and_lift", *IMAGES, *SINGLE_LINEAR[:2], "MODEL.LIFTER.LINEAR.HIDDEN", "16"]
MINIMAL = {  # the smallest config of every registered pipeline
    "triangulation": ["MODEL.HEAD.NAME", "dlt"],
    "lifting": ["MODEL.PIPELINE", "lifting", *SINGLE_LINEAR],
    "screen_lifting": ["MODEL.PIPELINE", "screen_lifting", "MODEL.LIFTER.NAME", "poseformer", "DATASETS.VIEWS",
                       "single", "DATASETS.FRAMES", "9", "MODEL.LIFTER.POSEFORMER.EMBED_DIM_RATIO", "8", "MODEL.LIFTER.POSEFORMER.DEPTH", "1",
                       "MODEL.LIFTER.POSEFORMER.NUM_HEADS", "2"],
    "multiview_lifting": ["MODEL.PIPELINE", "multiview_lifting", "MODEL.LIFTER.NAME", "esmformer", "DATASETS.FRAMES",
                          "9", "MODEL.LIFTER.ESMFORMER.FEATURES", "16"],
    "multiview_consistency": ["MODEL.PIPELINE", "multiview_consistency", "MODEL.LIFTER.NAME", "pose3d",
                              "DATASETS.VIEWS", "single", "DATASETS.TRAIN_VIEWS", "all", "MODEL.LIFTER.POSE3D.HIDDEN", "16"],
    "refined": REFINED,
    "image": ["MODEL.PIPELINE", "image", *IMAGES, "MODEL.HEAD.NAME", "dlt"],
    "detect_and_lift": DETECT_AND_LIFT,
    "scoremap_lifting": ["MODEL.PIPELINE", "scoremap_lifting", "MODEL.LIFTER.NAME", "scoremap_direct",
                         "MODEL.LIFTER.SCALE", "mean", "MODEL.LIFTER.SCOREMAP_DIRECT.SCOREMAP_SIZE", "32",
                         "MODEL.LIFTER.SCOREMAP_DIRECT.HIDDEN", "[16]"],
    "image_lifting": ["MODEL.PIPELINE", "image_lifting", *IMAGES, "MODEL.LIFTER.NAME", "image_canonical",
                      "MODEL.LIFTER.SCALE", "mean"],
}


def test_every_registered_pipeline_builds_from_a_minimal_config():
    assert sorted(PIPELINES) == sorted(MINIMAL)
    for name, overrides in MINIMAL.items():
        cfg = load_config(None, overrides)
        assert cfg.MODEL.PIPELINE == name
        assert type(build_pipeline(cfg)) is PIPELINES.get(name)


def test_an_unknown_pipeline_lists_the_registered_ones():
    with pytest.raises(RegistryError, match="unknown pipeline 'voxel'; registered pipeline names: detect_and_lift, "
                                            "image, image_lifting, lifting, multiview_consistency, "
                                            "multiview_lifting, refined, scoremap_lifting, screen_lifting, "
                                            "triangulation"):
        build_pipeline(load_config(None, ["MODEL.PIPELINE", "voxel", "MODEL.HEAD.NAME", "dlt"]))


@pytest.mark.parametrize("overrides, message", [
    (["MODEL.PIPELINE", "image", "MODEL.HEAD.NAME", "dlt"],
     r"MODEL.PIPELINE 'image' does not fit the model's parts: MODEL.BACKBONE.NAME 'none', MODEL.LIFTER.NAME 'none' "
     r"and MODEL.REFINER.NAME 'none' make a 'triangulation' pipeline; set MODEL.PIPELINE triangulation, or the parts "
     r"of a 'image' pipeline: MODEL.BACKBONE.NAME \(e.g. resnet\)"),
    (SINGLE_LINEAR, "MODEL.PIPELINE 'triangulation' does not fit .* make a 'lifting' pipeline; set MODEL.PIPELINE "
                    "lifting"),
    (["MODEL.PIPELINE", "lifting", "MODEL.LIFTER.NAME", "poseformer", "DATASETS.VIEWS", "single"],
     r"make a 'screen_lifting' pipeline; .* 'lifting' pipeline: MODEL.LIFTER.NAME lcn, linear, semgcn \(standardised"),
])
def test_a_pipeline_that_does_not_fit_its_parts_names_the_keys(overrides, message):
    with pytest.raises(PipelineConfigError, match=message):
        build_pipeline(load_config(None, overrides))


@pytest.mark.parametrize("overrides, key", [
    ([*REFINED, "MODEL.LIFTER.WEIGHTS", "missing/model_best.pth"], "MODEL.LIFTER.WEIGHTS"),
    ([*DETECT_AND_LIFT, "MODEL.LIFTER.WEIGHTS", "missing/lifter.pth", "MODEL.BACKBONE.WEIGHTS", "missing/model.pth"],
     "MODEL.LIFTER.WEIGHTS"),
])
def test_build_loads_no_weights_the_engine_does(overrides, key):
    cfg = load_config(None, overrides)
    model = build_pipeline(cfg)  # the missing checkpoints are not read
    with pytest.raises(PipelineConfigError, match=f"{key}: checkpoint file 'missing/.*' does not exist"):
        load_pretrained_parts(cfg, model)


def test_the_engine_loads_the_composed_parts_and_keeps_them_frozen(tmp_path):
    torch.manual_seed(0)
    lifting = build_pipeline(load_config(None, MINIMAL["lifting"]))
    torch.save({"model": lifting.state_dict()}, tmp_path / "lifter.pth")
    cfg = load_config(None, [*REFINED, "MODEL.LIFTER.WEIGHTS", str(tmp_path / "lifter.pth")])
    torch.manual_seed(1)
    refined = build_pipeline(cfg)
    assert not torch.equal(refined.base.lifter.output_layer.weight, lifting.lifter.output_layer.weight)
    load_pretrained_parts(cfg, refined)
    assert torch.equal(refined.base.lifter.output_layer.weight, lifting.lifter.output_layer.weight)
    assert not any(p.requires_grad for p in refined.base.parameters()) and refined.trainable


def test_a_run_config_written_before_the_key_builds_its_pipeline(tmp_path):
    """An old run's config.yaml (a full dump without MODEL.PIPELINE) gets the pipeline its parts then built (the
    pipelines added since have always been named in their runs' files)."""
    for name, overrides in MINIMAL.items():
        if name in ("scoremap_lifting", "image_lifting"):
            continue
        dump = yaml_without_pipeline(load_config(None, overrides))
        (tmp_path / "config.yaml").write_text(dump)
        cfg = load_config(str(tmp_path / "config.yaml"), [])
        assert cfg.MODEL.PIPELINE == name
        assert type(build_pipeline(cfg)) is PIPELINES.get(name)


def yaml_without_pipeline(cfg) -> str:
    cfg = cfg.clone()
    cfg.defrost()
    del cfg.MODEL["PIPELINE"]
    return cfg.dump()


def _inputs_only(cfg, split="test"):
    """Two samples of the configured dataset, batched, with every ground-truth key removed."""
    from core.batch import collate_samples
    from core.sample_schema import TRUTH_KEYS
    from datasets import build_dataset
    dataset = build_dataset(cfg, split)
    batch = collate_samples([dataset[0], dataset[1]])
    return {key: value for key, value in batch.items() if key not in TRUTH_KEYS}, batch


SMALL_WORLD = ["DATASETS.SYNTHETIC.TRAIN_SUBJECTS", "['S1']", "DATASETS.SYNTHETIC.TEST_SUBJECTS", "['S9']",
               "DATASETS.SYNTHETIC.ACTIONS", "['walk']",
               "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "12", "DATASETS.SYNTHETIC.IMAGE_SIZE", "64"]


@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_every_pipeline_predicts_from_the_inputs_alone(name):
    """``forward`` reads no ground truth (``core.sample_schema.TRUTH_KEYS``); ``targets`` reads it, in the frame of
    ``pred_3d``. ERD with its true-pelvis root takes the pelvis from ``truth_inputs`` and says so when it is not
    given; its least-squares root needs nothing."""
    overrides = MINIMAL[name] + SMALL_WORLD + (["MODEL.REFINER.ROOT", "least_squares"] if name == "refined" else [])
    cfg = load_config(None, overrides)
    model = build_pipeline(cfg).eval()
    inputs, batch = _inputs_only(cfg)
    with torch.no_grad():
        pred = model(inputs)["pred_3d"]
        assert torch.equal(pred, model(batch)["pred_3d"])
        target = model.targets(batch)["target_3d"]
    assert pred.shape == target.shape == (2, 17, 3) and torch.isfinite(pred).all()
    if name == "refined":
        truth_root = build_pipeline(load_config(None, MINIMAL[name] + SMALL_WORLD)).eval()
        with pytest.raises(ValueError, match="MODEL.REFINER.ROOT gt takes the true pelvis"):
            truth_root(inputs)
        with pytest.raises(ValueError, match="MODEL.REFINER.ROOT gt takes the true pelvis"):
            truth_root.truth_inputs(inputs)
        with torch.no_grad():
            given = truth_root(inputs, **truth_root.truth_inputs(batch))["pred_3d"]
        assert torch.isfinite(given).all() and given.shape == (2, 17, 3)
