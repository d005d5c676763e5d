"""Models, each registered under a name; ``pipelines.build_pipeline`` composes them from the config."""
