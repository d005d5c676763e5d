"""EpiPose command line: ``python main.py --cfg configs/x.yaml [KEY VALUE ...]``.

Merges the YAML file and the ``KEY VALUE`` overrides into the defaults (core/config/defaults.py),
then trains (``DOTRAIN``) and tests (``DOTEST``) the configured pipeline, writing everything into
``OUTPUT_DIR`` (a run that does not train, in the ``OUTPUT_DIR`` of a training run, into a subfolder of its
own, e.g. ``eval_model_best/``). Configuration mistakes stop the run before anything is written, with one
line on stderr and exit status 2.
"""
import argparse
import sys

from core.engine.run import UsageError, run


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="EpiPose: multi-view 3D human pose estimation")
    parser.add_argument("--cfg", required=True, metavar="FILE", help="YAML config file")
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE",
                        help="config overrides, e.g. DOTRAIN False SOLVER.MAX_EPOCHS 2")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        run(args.cfg, args.opts)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
