"""DCO (Chen et al. 2025, arXiv 2502.07154): the Direct Coverage Optimization loss (``dco.loss``),
the direct-answer arithmetic task (``dco.task``), training with the example-replacement rule
(``dco.train``), exact pass@N evaluation (``dco.evaluate``), the cpu units (``dco.experiment``),
figures and ``--scale full`` (``dco.full``)."""
