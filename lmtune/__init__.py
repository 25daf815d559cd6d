"""Decide, estimate, train and watch forgetting: a Jupyter-first toolkit for adapting language models.

The layers, each importing only from those before it: the ground (`settings`, `catalog`, `data`, `corpus`, `models`,
`report`) <- `estimate` (the memory and time models) <- `plan` (fit, fixes, the advisor) <- `train` (the stages, the
monitor, the launcher) <- `ui` (widgets, the command line, the demo)."""

__version__ = "0.1.0"

from lmtune._moved import install as _install_moved
_install_moved()   # the pre-0.2 module paths (lmtune.memory, lmtune.cost, ...) resolve, with a DeprecationWarning

def app(*args, **kwargs):
    "The estimator, the advisor and the training dashboard in one notebook widget: `lmtune.ui.widgets.app` (imported on first use)."
    from lmtune.ui.widgets import app as _app
    return _app(*args, **kwargs)
