"""Decide, estimate, train and watch forgetting: a Jupyter-first toolkit for adapting language models"""

__version__ = "0.1.0"

def app(*args, **kwargs):
    "The estimator, the advisor and the training dashboard in one notebook widget: `lmtune.widgets.app` (imported on first use)."
    from lmtune.widgets import app as _app
    return _app(*args, **kwargs)
