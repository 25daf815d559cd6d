"""Every stage trains with every method for a few steps with falling loss (the SFT x method grid lives in
nbs/train/05_stages.ipynb; here continued pretraining and DPO, on a tiny Llama, and GPT-2 for BitFit, which needs biases).

Setup, and why it uses explicit learning rates: the presets (`lmtune.train.recipe.LR_PRESETS`, `ADAPTER_LR`, DPO 10x lower)
are meant for pretrained models and hundreds of steps. Adam moves each weight by about `lr` per step, so in DPO a
handful of steps at the preset (full 1e-6, ia3 3e-4) changes the log-probabilities by less than the 4 decimals the log
shows, and the loss reads ln 2 throughout. The trainer is not at fault: `test_dpo_preset_learning_rate_moves` shows
the reward margin rising at every step at the presets too, just slowly. So each method gets a learning rate that moves
a tiny model within 8 steps, and the data is one batch that repeats (10 domain texts pack into 7 blocks of 64 tokens;
8 preference pairs), so the loss of the same rows is compared over time and the test measures training, not
batch-to-batch noise (with 25 blocks in 4 different batches, IA3 and BitFit losses moved by +-0.1 between batches). The model is pretrained for 150 steps
(cached by `tiny_model_dir`): in a random model IA3's scaling vectors act on near-zero signal and barely move anything.
"""
import math, tempfile
import pytest
import torch

torch.set_num_threads(1)
import lmtune.train.recipe as TC
import lmtune.train.stages as T
from lmtune.corpus import domain_corpus, preference_set
from lmtune.models import tiny_model_dir

SIZE = dict(vocab_size=300, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, pretrain_steps=150)
QUICK = dict(batch_size=8, seq_len=64, logging_steps=1, save_steps=1000, progress_bar=False)
STEPS = 8

@pytest.fixture(scope="module")
def llama(): return str(tiny_model_dir("llama", **SIZE))

@pytest.fixture(scope="module")
def gpt2(): return str(tiny_model_dir("gpt2", **{k: v for k, v in SIZE.items() if k != "num_kv_heads"}))

def _losses(r): return [p["loss"] for p in r.losses]

def _falls(l): return sum(l[-2:]) / 2 < sum(l[:2]) / 2

SMALL = dict(bottleneck=dict(bottleneck_size=8)) # the tiny model is 32 wide: the default 64 would widen it
CPT_LR = dict(full=1e-3, freeze=2e-3, lora=3e-3, dora=3e-3, ia3=3e-2, prefix=3e-2, bitfit=1e-2, bottleneck=3e-3)

@pytest.mark.parametrize("method", list(CPT_LR))
def test_continue_pretraining_method(method, llama, gpt2, tmp_path):
    r = T.continue_pretraining(gpt2 if method == "bitfit" else llama, domain_corpus(10), method=method, max_steps=STEPS,
                               learning_rate=CPT_LR[method], output_dir=tmp_path, **QUICK, **SMALL.get(method, {}))
    l = _losses(r)
    assert len(l) == STEPS and all(map(math.isfinite, l)), l
    assert _falls(l), (method, l)
    assert r.method == method and 0 < r.metrics["trainable_params"] < r.metrics["total_params"] or method == "full"

DPO_LR = dict(lora=3e-3, dora=3e-3, full=3e-4, ia3=1e-1, freeze=1e-3, prefix=1e-2, bitfit=1e-2, bottleneck=3e-3)

@pytest.mark.parametrize("method", list(DPO_LR))
def test_dpo_method(method, llama, gpt2, tmp_path):
    r = T.dpo(gpt2 if method == "bitfit" else llama, preference_set(8), method=method, max_steps=STEPS,
              learning_rate=DPO_LR[method], output_dir=tmp_path, **QUICK, **SMALL.get(method, {}))
    logs = [h for h in r.log_history if "loss" in h and "rewards/margins" in h]
    l, margin = [h["loss"] for h in logs], [h["rewards/margins"] for h in logs]
    assert len(l) == STEPS, r.log_history
    if method != "prefix": # the policy starts as the reference: loss ln 2, margin 0 (prefix starts from random virtual tokens)
        assert abs(l[0] - math.log(2)) < 1e-3 and abs(margin[0]) < 1e-3, (l[0], margin[0])
    assert _falls(l) and l[-1] < math.log(2), (method, l)
    assert sum(margin[-2:]) > sum(margin[:2]) and margin[-1] > 0, (method, margin)

@pytest.mark.parametrize("method", ["full", "ia3"])
def test_dpo_preset_learning_rate_moves(method, llama, tmp_path):
    "At the preset learning rate (no learning_rate=) DPO trains too: the margin rises at every step, slowly."
    r = T.dpo(llama, preference_set(8), method=method, max_steps=STEPS, output_dir=tmp_path, **QUICK)
    margin = [h["rewards/margins"] for h in r.log_history if "rewards/margins" in h and "loss" in h]
    assert all(b > a for a, b in zip(margin[1:], margin[2:])) and margin[-1] > 0, margin
    assert r.log_history[0]["learning_rate"] <= TC.preset_learning_rate("finetune", method, "dpo")

@pytest.mark.parametrize("stage", ["continue_pretraining", "dpo"])
def test_qlora(stage, llama, tmp_path):
    if not torch.cuda.is_available(): pytest.skip("qlora needs a CUDA GPU with bitsandbytes (4-bit NF4 base)")
    fn, data = (T.continue_pretraining, domain_corpus(10)) if stage != "dpo" else (T.dpo, preference_set(8))
    r = fn(llama, data, method="qlora", max_steps=STEPS, learning_rate=3e-3, output_dir=tmp_path, **QUICK)
    assert _falls(_losses(r)), _losses(r)


def test_bottleneck_saves_a_small_adapter_folder_and_a_rerun_loads_it(llama, tmp_path):
    "method='bottleneck' through sft: the final save is the adapters alone; the same call again loads them, no training."
    from pathlib import Path
    from lmtune.corpus import instruction_set
    from lmtune.train.bottleneck import bottleneck_adapters, is_bottleneck_folder
    kw = dict(method="bottleneck", bottleneck_size=8, max_steps=4, learning_rate=3e-3, output_dir=str(tmp_path), **QUICK)
    r = T.sft(llama, instruction_set(40), **kw)
    assert r.weights_path.endswith("bottleneck_model.safetensors") and is_bottleneck_folder(tmp_path)
    assert Path(r.weights_path).stat().st_size < 0.2 * (Path(llama) / "model.safetensors").stat().st_size
    again = T.sft(llama, instruction_set(40), **kw)
    a, b = bottleneck_adapters(r.model), bottleneck_adapters(again.model)
    assert a and a.keys() == b.keys()
    assert all(torch.equal(x, y) for n in a for x, y in zip(a[n].state_dict().values(), b[n].state_dict().values()))
