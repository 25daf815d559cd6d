"""Decide, estimate, train and watch forgetting: a Jupyter-first toolkit for adapting language models

Modules:

- `lmtune.calibrate`: Run a few real `Trainer` steps of a configuration and compare the measured peak memory and step time with what `lmtune.memory` and `lmtune.cost` predict.
- `lmtune.memory`: Predict `torch.cuda.max_memory_allocated()` of a Hugging Face `Trainer` run from the model's config alone: pure arithmetic over the tensors that exist at the peak of a training step."""

__version__ = "0.1.0"

def app(*args, **kwargs):
    "The estimator, the advisor and the training dashboard in one notebook widget: `lmtune.widgets.app` (imported on first use)."
    from lmtune.widgets import app as _app
    return _app(*args, **kwargs)
