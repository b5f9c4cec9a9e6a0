"""Stage 3, running one job: the job and its measurement, the clocks that time ``infer()`` alone, what the rest of
the machine did meanwhile, and the facts of the machine (environment, emulation). No pytest here: a case runs
without it (``pipeline.run_case``)."""
