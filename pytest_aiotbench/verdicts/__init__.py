"""Stage 5, judging measurements: accuracy and VIPS (score), is a latency trustworthy (validity), the A/B
statistics of a latency change (ab), and the pooling of repeated runs (repeats). Pure functions over samples."""
