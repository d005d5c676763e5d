"""Models, each registered under a name; ``pipeline.build_pipeline`` composes them from the config."""
