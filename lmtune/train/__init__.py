"""The train layer: the stages (`stages`), the recipe they share (`recipe`), GRPO's rewards (`rewards`), the model and
its method (`model`), the training rows (`rows`), the divergence guard (`guard`), what a run leaves on disk
(`records`), adapters, the forgetting monitor, the launcher, GPU measurements (`measure`) and what a run prints
(`console`).

`from lmtune.train import sft` keeps working: the stage functions and everything the pre-0.2 `lmtune.train` module
held are looked up in the submodules on first use."""
from .console import quiet_libraries
quiet_libraries()   # before the trainer stack imports DeepSpeed or bitsandbytes: drop their two CPU-only notices

STAGES = ('pretrain', 'continue_pretraining', 'sft', 'dpo', 'kto', 'orpo', 'grpo', 'TrainResult')   # the layer's public face: no warning

def __getattr__(name):
    import importlib
    if name in STAGES: return getattr(importlib.import_module('lmtune.train.stages'), name)
    from lmtune._moved import TRAIN_MODULES, moved_attribute
    return moved_attribute(__name__, TRAIN_MODULES, name)
