"""Training: the shared loop (:mod:`~avsal.train.engine`), losses, the STANet tasks, CAM extraction."""
