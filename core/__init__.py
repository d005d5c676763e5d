"""EpiPose: multi-view 3D human pose estimation toolbox (the shared core: config, registry, geometry, engine, metrics)."""
import os

# numpy's OpenBLAS threads busy-wait and starve torch's OpenMP threads when one process mixes both (the
# synthetic renderer does): on 2 cores a rendered sample took 74 ms instead of 26 ms. One BLAS thread,
# unless the user sets OPENBLAS_NUM_THREADS; this must run before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
