"""Stage 1, what the user asks for: the catalog of cases, accuracy thresholds and regression limits, the labelled
dataset, its deterministic preprocessing, and the on-disk store of cropped pixels that the timed runs read."""
