"""Which pipeline (``MODEL.PIPELINE``) the model's parts make, and that key for configs written before it existed.

Before ``MODEL.PIPELINE``, the builder chose the pipeline from the parts that are not ``none``: a backbone made an
image pipeline (with a lifter: detect-and-lift), a lifter a lifting pipeline of the kind its inputs ask for (with a
refiner: refined), and otherwise the head triangulated keypoints. Lifters added since that take a backbone's
features (``IMAGE_LIFTING_PIPELINES``) make their own pipeline with a backbone. ``pipeline_of_parts`` states these
rules once; ``modeling.pipelines`` checks with them that a config's ``MODEL.PIPELINE`` fits its parts, and
``legacy_pipeline`` gives an old run's saved ``config.yaml`` the pipeline it was built with.
"""
from typing import Any, Callable, Dict

PIPELINE_KEY = "MODEL.PIPELINE"
IMAGE_LIFTING_PIPELINES = ("image_lifting",)  # the pipelines of lifters that lift a backbone's image features

# The lifters registered when MODEL.PIPELINE was introduced whose pipeline is not ``lifting`` (linear, lcn, semgcn).
LEGACY_LIFTER_PIPELINES = {"poseformer": "screen_lifting", "esmformer": "multiview_lifting",
                           "pose3d": "multiview_consistency"}


def pipeline_of_parts(backbone: str, lifter: str, refiner: str, lifter_pipeline: Callable[[str], str]) -> str:
    """The pipeline that MODEL.BACKBONE.NAME, MODEL.LIFTER.NAME and MODEL.REFINER.NAME make; ``lifter_pipeline``
    maps a lifter's name to the keypoint-lifting pipeline that feeds it."""
    if backbone != "none":
        if lifter == "none":
            return "image"
        return lifter_pipeline(lifter) if lifter_pipeline(lifter) in IMAGE_LIFTING_PIPELINES else "detect_and_lift"
    if lifter == "none":
        return "triangulation"
    return "refined" if refiner != "none" else lifter_pipeline(lifter)


def legacy_pipeline(flat: Dict[str, Any]) -> str:
    """MODEL.PIPELINE for the flattened config ``flat`` of a file written before the key existed (such as an old
    run's ``config.yaml`` or a checkpoint's config): the pipeline the builder then chose."""
    name = lambda part: flat.get(f"MODEL.{part}.NAME", "none")  # noqa: E731
    return pipeline_of_parts(name("BACKBONE"), name("LIFTER"), name("REFINER"),
                             lambda lifter: LEGACY_LIFTER_PIPELINES.get(lifter, "lifting"))
