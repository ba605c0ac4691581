"""Experiments that use the toolchain but are not part of the main job: design-space sweeps (explore), weight
clustering, compression tables and compressed firmware, kernel flags, idle CPU, a noisy line, mutated models.
Results and commands are in docs/EXPERIMENTS.md and docs/BENCHMARKS.md."""
