"""Decide, estimate, train and watch forgetting: a Jupyter-first toolkit for adapting language models

Modules:

- `lmtune.estimate.trace`: For a model the analytic model cannot describe (BLOOM, Falcon, GPT-NeoX, Phi, MPT, T5, BART, tomorrow's architecture), run its real training step at full size without allocating anything, and read the peak.
- `lmtune.specs`: `tiny:llama`, `builtin:instruction?n=400`, a folder, a file or a hub id: one way to name a model or data, read the same by the Python API (`sft('tiny:llama', 'builtin:instruction?n=400')`), run files, the CLI and the Training tab.
- `lmtune.train.bottleneck`: Adapter layers (Houlsby et al. 2019): a down-projection, a GELU and an up-projection with a residual after the attention and/or MLP block of every decoder layer of a frozen model, added, trained, saved, loaded and switched off by lmtune, because no maintained library builds them for transformers 5.
- `lmtune.train.mitigate`: `kl_to_base_weight`, `anchor_weight` and `ewc_weight`: three terms added to the training loss that pull the model toward the base it started from, run by every adapting stage and priced by the estimators.
- `lmtune.ui.compare`: Rate the base model's and the tuned model's answers side by side without knowing which is which: `CompareWidget` saves every rating the moment it is made, resumes where it stopped, and reports how often the tuned model wins.
- `lmtune.ui.training`: Choose a model, data and a stage, press Start, and watch the run learn and forget: `lmtune.app()`'s Training tab, also usable alone as `TrainingPanel()`."""

__version__ = "0.1.0"

from lmtune._moved import install as _install_moved
_install_moved()   # the pre-0.2 module paths (lmtune.memory, lmtune.cost, ...) resolve, with a DeprecationWarning

def app(*args, **kwargs):
    "The estimator, the advisor and the training dashboard in one notebook widget: `lmtune.ui.app.app` (imported on first use)."
    from lmtune.ui.app import app as _app
    return _app(*args, **kwargs)
