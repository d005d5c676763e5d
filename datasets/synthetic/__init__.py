"""The embedded synthetic multi-view world: motion, camera rigs, renderer, detector noise and the dataset."""
