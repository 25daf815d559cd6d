"""Decide, estimate, train and watch forgetting: a Jupyter-first toolkit for adapting language models

Modules:

- `lmtune.estimate.trace`: For a model the analytic model cannot describe (BLOOM, Falcon, GPT-NeoX, Phi, MPT, T5, BART, tomorrow's architecture), run its real training step at full size without allocating anything, and read the peak.
- `lmtune.specs`: `tiny:llama`, `builtin:instruction?n=400`, a folder, a file or a hub id: one way to name a model or data, read the same by the Python API (`sft('tiny:llama', 'builtin:instruction?n=400')`), run files, the CLI and the Training tab.
- `lmtune.train.adapters`: List, measure, load, swap, merge and combine PEFT adapters (and list lmtune's bottleneck adapters); write a merged model folder ready for serving.
- `lmtune.train.bottleneck`: Adapter layers (Houlsby et al. 2019): a down-projection, a GELU and an up-projection with a residual after the attention and/or MLP block of every decoder layer of a frozen model, added, trained, saved, loaded and switched off by lmtune, because no maintained library builds them for transformers 5.
- `lmtune.train.card`: A `README.md` for a saved model or adapter folder, written from what lmtune recorded about the run that made it: the base, the stage and method with their settings, the data, the training curve, what the forgetting monitor measured against the base, and the evaluation. Nothing is guessed: what was not recorded is left out.
- `lmtune.train.continual`: `continual(model, stream, monitor=...)`: fine-tune on batches as they arrive, keep an update only if the forgetting monitor finds it within the budget against the base and against the last accepted model, roll back the others, mix earlier accepted rows back in, log every decision, and pick up where a restart left off.
- `lmtune.train.harness`: `run_benchmarks(model, tokenizer, ["hellaswag"])` scores the model in memory on any lm-eval task; `check_benchmarks` says up front, in a second, when a task cannot run here (lm-eval missing, an unknown name, its data not reachable).
- `lmtune.train.mitigate`: `kl_to_base_weight`, `anchor_weight` and `ewc_weight`: three terms added to the training loss that pull the model toward the base it started from, run by every adapting stage and priced by the estimators.
- `lmtune.train.rewards`: Verifiable rewards that check a generated answer by code, and the check of any reward function before a GRPO run loads a model.
- `lmtune.ui.compare`: Rate the base model's and the tuned model's answers side by side without knowing which is which: `CompareWidget` saves every rating the moment it is made, resumes where it stopped, and reports how often the tuned model wins.
- `lmtune.ui.training`: Choose a model, data and a stage, press Start, and watch the run learn and forget: `lmtune.app()`'s Training tab, also usable alone as `TrainingPanel()`."""

__version__ = "0.1.0"

from lmtune._moved import install as _install_moved
_install_moved()   # the pre-0.2 module paths (lmtune.memory, lmtune.cost, ...) resolve, with a DeprecationWarning

def app(*args, **kwargs):
    "The estimator, the advisor and the training dashboard in one notebook widget: `lmtune.ui.app.app` (imported on first use)."
    from lmtune.ui.app import app as _app
    return _app(*args, **kwargs)
