"""EpiPose: multi-view 3D human pose estimation toolbox (the shared core: config, registry, geometry, engine, metrics)."""
