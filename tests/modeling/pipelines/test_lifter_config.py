"""Every lifter's options live in its own config node, MODEL.LIFTER.<NAME>, named as its constructor's arguments."""
import inspect

import pytest

from core.config import get_defaults, load_config
from core.registry import LIFTERS
from modeling.pipelines import PipelineConfigError, build_pipeline
from modeling.pipelines.lifter_config import lifter_options

# the sizes that the pipeline building a lifter gives it (from DATASETS and the skeleton), not config options
SIZES = {"in_features", "out_features", "num_frames", "num_joints", "skeleton", "centre_frame"}


@pytest.mark.parametrize("name", list(LIFTERS))
def test_every_lifter_has_a_node_of_its_constructor_arguments_with_their_defaults(name):
    node = get_defaults().MODEL.LIFTER[name.upper()]
    parameters = inspect.signature(LIFTERS.get(name)).parameters
    options = {key.lower(): value for key, value in node.items()}
    assert set(options) == set(parameters) - SIZES
    # a sequence default is a tuple in the constructor, a list in the config (as YAML reads it)
    assert options == {key: list(parameters[key].default) if isinstance(parameters[key].default, tuple)
                       else parameters[key].default for key in options}


@pytest.mark.parametrize("name, key, value", [("linear", "HIDDEN", 48), ("lcn", "KNN", 2),
                                              ("poseformer", "EMBED_DIM_RATIO", 8), ("esmformer", "FEATURES", 16)])
def test_a_lifter_takes_its_own_node_and_ignores_the_others(name, key, value):
    cfg = load_config(None, ["MODEL.LIFTER.NAME", name, f"MODEL.LIFTER.{name.upper()}.{key}", str(value),
                             "MODEL.LIFTER.SEMGCN.HIDDEN", "7"])
    assert lifter_options(cfg)[key.lower()] == value and "non_local" not in lifter_options(cfg)


@pytest.mark.parametrize("overrides, message", [
    (["MODEL.PIPELINE", "lifting", "MODEL.LIFTER.NAME", "linear", "DATASETS.VIEWS", "single",
      "MODEL.LIFTER.LINEAR.DROPOUT", "1.0"], r"MODEL.LIFTER.LINEAR: dropout must be a dropout probability in \[0, 1\)"),
    (["MODEL.PIPELINE", "lifting", "MODEL.LIFTER.NAME", "linear", "DATASETS.VIEWS", "single",
      "MODEL.LIFTER.LINEAR.MAX_NORM", "-1.0"], r"MODEL.LIFTER.LINEAR: max_norm must be >= 0"),
    (["MODEL.PIPELINE", "lifting", "MODEL.LIFTER.NAME", "lcn", "DATASETS.VIEWS", "single", "MODEL.LIFTER.LCN.DROPOUT",
      "-0.1"],
     r"MODEL.LIFTER.LCN: dropout must be"),
    (["MODEL.PIPELINE", "screen_lifting", "MODEL.LIFTER.NAME", "poseformer", "DATASETS.VIEWS", "single",
      "MODEL.LIFTER.POSEFORMER.DROP_PATH_RATE", "1.0"], r"MODEL.LIFTER.POSEFORMER: PoseFormer: drop_path_rate"),
    (["MODEL.PIPELINE", "refined", "MODEL.LIFTER.NAME", "linear", "DATASETS.VIEWS", "single", "MODEL.REFINER.NAME",
      "erd", "MODEL.REFINER.DROPOUT", "1.0", "SOLVER.MAX_EPOCHS", "10"], r"MODEL.REFINER: dropout must be"),
])
def test_a_bad_lifter_option_fails_once_naming_its_node(overrides, message):
    with pytest.raises(PipelineConfigError, match=message):
        build_pipeline(load_config(None, overrides))


def test_max_norm_zero_turns_the_linear_lifters_clipping_off():
    base = ["MODEL.PIPELINE", "lifting", "MODEL.LIFTER.NAME", "linear", "DATASETS.VIEWS", "single",
            "MODEL.LIFTER.LINEAR.HIDDEN", "16"]
    clipped = build_pipeline(load_config(None, base)).lifter.output_layer.max_norm
    free = build_pipeline(load_config(None, base + ["MODEL.LIFTER.LINEAR.MAX_NORM", "0.0"])).lifter.output_layer
    assert clipped == 1.0 and free.max_norm is None
