from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import ConfigError, config_differences, get_defaults, load_config


def test_defaults_have_the_documented_top_level_keys():
    cfg = get_defaults()
    for key in ("DOTRAIN", "DOTEST", "WEIGHTS", "OUTPUT_DIR", "SEED", "DEVICE", "MODEL", "DATASETS", "SOLVER",
                "TEST", "VIS"):
        assert key in cfg


def test_file_then_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("SOLVER:\n  MAX_EPOCHS: 7\n  BASE_LR: 0.01\nMODEL:\n  LIFTER:\n    NAME: linear\n")
    cfg = load_config(str(path), ["SOLVER.MAX_EPOCHS", "2", "DOTRAIN", "False",
                                  "DATASETS.SYNTHETIC.TEST_SUBJECTS", "['S9']", "SOLVER.BASE_LR", "1"])
    assert cfg.SOLVER.MAX_EPOCHS == 2 and cfg.DOTRAIN is False
    assert cfg.SOLVER.BASE_LR == 1.0 and isinstance(cfg.SOLVER.BASE_LR, float)  # int accepted for a float
    assert cfg.DATASETS.SYNTHETIC.TEST_SUBJECTS == ["S9"]
    assert cfg.MODEL.LIFTER.NAME == "linear"
    assert cfg.OUTPUT_DIR == "outs/exp"
    assert cfg.is_frozen()


def test_dumped_config_reproduces_the_run(tmp_path):
    cfg = load_config(None, ["SOLVER.MAX_EPOCHS", "3", "OUTPUT_DIR", str(tmp_path / "o")])
    dumped = tmp_path / "config.yaml"
    dumped.write_text(cfg.dump())
    assert load_config(str(dumped)) == cfg


@pytest.mark.parametrize("overrides, expected", [
    (["SOLVER.MAX_EPOCH", "2"], "unknown config key 'SOLVER.MAX_EPOCH'; closest valid keys: SOLVER.MAX_EPOCHS"),
    (["BASE_LR", "1"], "closest valid keys: SOLVER.BASE_LR"),
    (["SOLVER.MAX_EPOCHS", "two"], "SOLVER.MAX_EPOCHS expects a value of type int"),
    (["DOTRAIN", "1"], "DOTRAIN expects a value of type bool"),
    (["SOLVER.MAX_EPOCHS"], "KEY VALUE pairs"),
    (["SOLVER", "3"], "'SOLVER' is a group of keys"),
])
def test_bad_overrides_name_the_key(overrides, expected):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("SOLVER: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml' is not valid YAML"):
        load_config(str(bad))
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("MODEL:\n  LIFTR:\n    NAME: linear\n")
    with pytest.raises(ConfigError, match=r"unknown.yaml': unknown config key 'MODEL.LIFTR.NAME'; closest valid keys: "
                                          r"MODEL.LIFTER.NAME"):
        load_config(str(unknown))
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(str(scalar))


def test_config_differences_tolerate_keys_added_or_removed_since():
    cfg = load_config(None, ["SOLVER.MAX_EPOCHS", "3"])
    old = cfg.clone()
    old.defrost()
    del old.SOLVER["AMP"]          # a key added to the defaults after the old run
    old.SOLVER.RETIRED = 1         # a key that no longer exists
    old.SOLVER.BASE_LR = 0.5
    assert config_differences(old.dump(), cfg, ignore=["SOLVER.MAX_EPOCHS"]) == [("SOLVER.BASE_LR", 0.5, 0.001)]


@pytest.mark.parametrize("model, pipeline", [
    ("MODEL:\n  HEAD:\n    NAME: dlt\n", "triangulation"),
    ("MODEL:\n  LIFTER:\n    NAME: semgcn\n", "lifting"),
    ("MODEL:\n  LIFTER:\n    NAME: poseformer\n", "screen_lifting"),
    ("MODEL:\n  LIFTER:\n    NAME: esmformer\n", "multiview_lifting"),
    ("MODEL:\n  LIFTER:\n    NAME: pose3d\n", "multiview_consistency"),
    ("MODEL:\n  LIFTER:\n    NAME: linear\n  REFINER:\n    NAME: erd\n", "refined"),
    ("MODEL:\n  BACKBONE:\n    NAME: resnet\n", "image"),
    ("MODEL:\n  BACKBONE:\n    NAME: resnet\n  LIFTER:\n    NAME: linear\n", "detect_and_lift"),
])
def test_a_file_written_before_model_pipeline_gets_the_pipeline_its_parts_built(tmp_path, epipose_log, model,
                                                                                 pipeline):
    (tmp_path / "old.yaml").write_text(model)
    assert load_config(str(tmp_path / "old.yaml")).MODEL.PIPELINE == pipeline
    warned = {r.getMessage() for r in epipose_log.records if "MODEL.PIPELINE" in r.getMessage()}
    assert warned == (set() if pipeline == "triangulation" else
                      {f"config file '{tmp_path / 'old.yaml'}' does not set MODEL.PIPELINE (written before the key "
                       f"existed): it builds the {pipeline} pipeline; add 'MODEL: PIPELINE: {pipeline}' to it"})
    # a file, a base or an override that sets the key is taken at its word
    assert load_config(str(tmp_path / "old.yaml"), ["MODEL.PIPELINE", "image"]).MODEL.PIPELINE == "image"
    (tmp_path / "new.yaml").write_text("_BASE_: old.yaml\n")
    (tmp_path / "old.yaml").write_text(model + "  PIPELINE: image\n")
    assert load_config(str(tmp_path / "new.yaml")).MODEL.PIPELINE == "image"
    assert load_config(None, ["MODEL.LIFTER.NAME", "linear"]).MODEL.PIPELINE == "triangulation"  # no file: default


def test_a_checkpoint_config_without_model_pipeline_resumes_as_the_pipeline_its_parts_built():
    cfg = load_config(None, ["MODEL.PIPELINE", "lifting", "MODEL.LIFTER.NAME", "linear"])
    old = cfg.clone()
    old.defrost()
    del old.MODEL["PIPELINE"]  # dumped before the key existed
    assert config_differences(old.dump(), cfg) == []
    refined = load_config(None, ["MODEL.PIPELINE", "refined", "MODEL.LIFTER.NAME", "linear", "MODEL.REFINER.NAME",
                                 "erd"])
    assert ("MODEL.PIPELINE", "lifting", "refined") in config_differences(old.dump(), refined)

def test_a_file_with_the_old_flat_lifter_keys_reads_them_into_its_lifters_node(tmp_path, epipose_log):
    (tmp_path / "old.yaml").write_text("MODEL:\n  PIPELINE: lifting\n  LIFTER:\n    NAME: linear\n    HIDDEN: 32\n"
                                       "    MAX_NORM: False\n    EMBED_DIM: 8\n")
    cfg = load_config(str(tmp_path / "old.yaml"), ["MODEL.LIFTER.DROPOUT", "0.1"])
    assert (cfg.MODEL.LIFTER.LINEAR.HIDDEN, cfg.MODEL.LIFTER.LINEAR.MAX_NORM, cfg.MODEL.LIFTER.LINEAR.DROPOUT) == \
        (32, 0.0, 0.1)
    assert cfg.MODEL.LIFTER.POSEFORMER.EMBED_DIM_RATIO == get_defaults().MODEL.LIFTER.POSEFORMER.EMBED_DIM_RATIO
    warned = list(dict.fromkeys(r.getMessage() for r in epipose_log.records if "own node" in r.getMessage()))
    assert warned == [f"config file '{tmp_path / 'old.yaml'}' uses keys of MODEL.LIFTER from before every lifter had "
                      "its own node (MODEL.LIFTER.<NAME>); read as: MODEL.LIFTER.HIDDEN -> MODEL.LIFTER.LINEAR.HIDDEN, "
                      "MODEL.LIFTER.MAX_NORM -> MODEL.LIFTER.LINEAR.MAX_NORM; ignored (MODEL.LIFTER.NAME 'linear' "
                      "never took them): MODEL.LIFTER.EMBED_DIM",
                      "command line uses keys of MODEL.LIFTER from before every lifter had its own node "
                      "(MODEL.LIFTER.<NAME>); read as: MODEL.LIFTER.DROPOUT -> MODEL.LIFTER.LINEAR.DROPOUT; ignored "
                      "(MODEL.LIFTER.NAME 'linear' never took them): none"]


def test_a_checkpoint_config_with_the_old_flat_lifter_keys_resumes_as_the_same_model():
    cfg = load_config(None, ["MODEL.PIPELINE", "screen_lifting", "MODEL.LIFTER.NAME", "poseformer",
                             "MODEL.LIFTER.POSEFORMER.EMBED_DIM_RATIO", "8", "MODEL.LIFTER.POSEFORMER.DROP_PATH_RATE",
                             "0.0"])
    old = cfg.clone()
    old.defrost()
    for node in ("LINEAR", "LCN", "SEMGCN", "POSE3D", "POSEFORMER", "ESMFORMER"):
        del old.MODEL.LIFTER[node]
    old.MODEL.LIFTER.update({"EMBED_DIM": 8, "DROP_PATH": 0.0, "DEPTH": 4, "HIDDEN": 1024, "LEVEL_DIM": 512})
    assert config_differences(old.dump(), cfg) == []
    old.MODEL.LIFTER.EMBED_DIM = 16
    assert config_differences(old.dump(), cfg) == [("MODEL.LIFTER.POSEFORMER.EMBED_DIM_RATIO", 16, 8)]


def test_the_resumable_keys_are_keys():
    from core.config.defaults import RESUMABLE
    defaults = get_defaults()
    for key in RESUMABLE:
        node = defaults
        for part in key.split("."):
            node = node[part]


def test_base_files_are_merged_first(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "root.yaml").write_text("SOLVER:\n  BASE_LR: 0.01\n  MAX_EPOCHS: 3\n")
    (tmp_path / "sub" / "middle.yaml").write_text("_BASE_: ../root.yaml\nSOLVER:\n  MAX_EPOCHS: 5\n")
    (tmp_path / "sub" / "leaf.yaml").write_text("_BASE_: middle.yaml\nSEED: 7\n")
    cfg = load_config(str(tmp_path / "sub" / "leaf.yaml"), ["SOLVER.BASE_LR", "0.5"])
    assert (cfg.SOLVER.MAX_EPOCHS, cfg.SEED, cfg.SOLVER.BASE_LR) == (5, 7, 0.5)
    assert cfg.OUTPUT_DIR == "outs/leaf"


def test_bad_base_files(tmp_path):
    (tmp_path / "a.yaml").write_text("_BASE_: b.yaml\n")
    (tmp_path / "b.yaml").write_text("_BASE_: a.yaml\n")
    with pytest.raises(ConfigError, match="form a cycle"):
        load_config(str(tmp_path / "a.yaml"))
    (tmp_path / "c.yaml").write_text("_BASE_: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"missing\.yaml' does not exist \(the _BASE_ of .*c\.yaml'\)"):
        load_config(str(tmp_path / "c.yaml"))
    (tmp_path / "d.yaml").write_text("SOLVER:\n  BASE_RATE: 1.0\n")
    (tmp_path / "e.yaml").write_text("_BASE_: d.yaml\n")
    with pytest.raises(ConfigError, match=r"d\.yaml': unknown config key 'SOLVER.BASE_RATE'"):
        load_config(str(tmp_path / "e.yaml"))
    (tmp_path / "f.yaml").write_text("_BASE_: [d.yaml]\n")
    with pytest.raises(ConfigError, match="_BASE_ must be the path of a config file"):
        load_config(str(tmp_path / "f.yaml"))


def test_every_shipped_config_loads():
    from pathlib import Path
    files = sorted((Path(__file__).parents[2] / "configs").rglob("*.yaml"))
    assert len(files) >= 12
    for path in files:
        assert load_config(str(path)).OUTPUT_DIR == f"outs/{path.stem}"


def test_damaged_config_files_and_overrides_end_in_config_errors(tmp_path):
    """Fuzzed (hypothesis) YAML files and override values raise ConfigError, never another exception."""
    valid = (Path(__file__).resolve().parents[2] / "configs" / "synthetic" / "esmformer_selfsup.yaml").read_text()
    base = (Path(__file__).resolve().parents[2] / "configs" / "synthetic" / "esmformer_supervised.yaml").read_text()
    (tmp_path / "esmformer_supervised.yaml").write_text(base)
    texts = st.one_of(st.text(max_size=200),
                      st.integers(0, len(valid)).map(lambda n: valid[:n]),
                      st.tuples(st.integers(0, len(valid)), st.text(min_size=1, max_size=8)).map(
                          lambda p: valid[:p[0]] + p[1] + valid[p[0] + len(p[1]):]))
    keys = st.sampled_from(["SOLVER.BASE_LR", "DATASETS.SYNTHETIC.ACTIONS", "MODEL.LIFTER.NAME", "DOTRAIN",
                            "SOLVER.MAX_EPOCHS", "SOLVER.NOPE", "VIS"])

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(text=texts, key=keys, value=st.text(max_size=20))
    def check(text, key, value):
        path = tmp_path / "damaged.yaml"
        path.write_text(text)
        for args in ((str(path), []), (str(tmp_path / "esmformer_supervised.yaml"), [key, value])):
            try:
                load_config(*args)
            except ConfigError:
                pass

    check()


def test_every_enumerated_key_exists_and_allows_its_default():
    from core.config.defaults import CHOICES
    defaults = get_defaults()
    for key, allowed in CHOICES.items():
        node = defaults
        for part in key.split("."):
            node = node[part]
        assert node in allowed, key


def test_the_enumerations_are_those_of_the_code_that_reads_them():
    from core.config.defaults import CHOICES
    from core.engine.evaluator import GROUND_TRUTHS
    from core.engine.solver import OPTIMIZERS, SCHEDULERS
    from datasets.sequences import VIEW_MODES
    from datasets.synthetic.dataset import MODES, RIGS
    from modeling.backbones.resnet import DEPTHS
    from modeling.fusion.epipolar import AGGREGATIONS, RESIDUALS, SIMILARITIES, SOURCE_MODES
    from modeling.pipelines import ImagePipeline
    from modeling.refiners.erd import FEATURES, ROOTS
    code = {"SOLVER.OPTIMIZER": OPTIMIZERS, "SOLVER.LR_SCHEDULER": SCHEDULERS, "TEST.GT_3D": tuple(GROUND_TRUTHS),
            "DATASETS.VIEWS": VIEW_MODES, "DATASETS.TRAIN_VIEWS": ("",) + VIEW_MODES, "DATASETS.MODE": MODES,
            "DATASETS.SYNTHETIC.RIG": RIGS, "MODEL.BACKBONE.DEPTH": DEPTHS, "MODEL.FUSION.AGGREGATION": AGGREGATIONS,
            "MODEL.FUSION.RESIDUAL": RESIDUALS, "MODEL.FUSION.SIMILARITY": SIMILARITIES,
            "MODEL.FUSION.SOURCES": SOURCE_MODES, "MODEL.BACKBONE.DECODE": ImagePipeline.DECODERS,
            "MODEL.HEAD.LOSS_3D": ImagePipeline.LOSSES_3D, "MODEL.REFINER.FEATURES": FEATURES,
            "MODEL.REFINER.ROOT": ROOTS}
    for key, values in code.items():
        assert set(CHOICES[key]) == set(values), key


@pytest.mark.parametrize("key, value, expected", [
    ("DATASETS.VIEWS", "sinlge", "DATASETS.VIEWS: unknown value 'sinlge'; expected one of 'all', 'single' (did you "
                                 "mean 'single'?)"),
    ("MODEL.BACKBONE.DEPTH", "51", "MODEL.BACKBONE.DEPTH: unknown value 51; expected one of 18, 34, 50, 101, 152"),
    ("SOLVER.OPTIMIZER", "adagrad", "SOLVER.OPTIMIZER: unknown value 'adagrad'; expected one of 'adam', 'amsgrad', "
                                    "'adamw', 'sgd'"),
    ("DATASETS.TRAIN_VIEWS", "both", "DATASETS.TRAIN_VIEWS: unknown value 'both'; expected one of '', 'all', 'single'"),
])
def test_enumerated_keys_refuse_other_values_naming_key_value_and_choices(tmp_path, key, value, expected):
    with pytest.raises(ConfigError) as err:
        load_config(None, [key, value])
    assert str(err.value).startswith(f"command line: {expected}") and "\n" not in str(err.value)
    path = tmp_path / "exp.yaml"
    group, leaf = key.rsplit(".", 1)
    path.write_text("\n".join(f"{'  ' * i}{part}:" for i, part in enumerate(group.split("."))) +
                    f" {{{leaf}: {value}}}\n")
    with pytest.raises(ConfigError, match=f"config file '{path}': {key}: unknown value"):
        load_config(str(path))


def test_a_misspelt_enumerated_value_stops_main_with_exit_status_2(tmp_path, capsys):
    import main
    out = tmp_path / "out"
    config = Path(__file__).resolve().parents[2] / "configs" / "synthetic" / "dlt_noisy2d.yaml"
    assert main.main(["--cfg", str(config), "DATASETS.VIEWS", "sinlge", "OUTPUT_DIR", str(out)]) == 2
    assert capsys.readouterr().err == "error: command line: DATASETS.VIEWS: unknown value 'sinlge'; expected one of " \
                                      "'all', 'single' (did you mean 'single'?)\n"
    assert not out.exists()
