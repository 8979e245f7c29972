"""Model parallelism: ``paradigm=pipeline`` (stages over ranks, microbatched) and ``paradigm=hybrid``
(data-parallel replicas x pipeline stages). See :mod:`fedbench.pipeline.runner`."""
