"""LoRA variants through a real stage (`lmtune.train.sft`): LoRA+ param groups keep their ratio in the trainer, a
PiSSA adapter is saved as plain LoRA that loads on the original base, every finished run writes its model card, and
the residual inits (PiSSA/OLoRA) are refused where the adapter-disabled model stands in for the base."""
import json
from pathlib import Path
import pytest
torch = pytest.importorskip("torch")

import lmtune.train.stages as T
from lmtune.corpus import DOMAIN_TASKS, instruction_set, preference_set
from lmtune.models import tiny_model_dir
from lmtune.train.monitor import ForgettingMonitor, builtin_inputs

TINY = dict(vocab_size=300, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, pretrain_steps=150) # as the other tests
QUICK = dict(batch_size=8, seq_len=64, logging_steps=2, save_steps=1000, progress_bar=False)

@pytest.fixture(scope="module")
def llama(): return str(tiny_model_dir("llama", **TINY))

def test_loraplus_groups_keep_their_ratio(tmp_path, llama):
    seen = {}
    from transformers import TrainerCallback
    class Rates(TrainerCallback):
        def on_step_end(self, args, state, control, optimizer=None, **kw):
            seen.setdefault("lrs", sorted({g["initial_lr"] for g in optimizer.param_groups if g["params"]}))
    T.sft(llama, instruction_set(32, tasks=DOMAIN_TASKS), method="lora", lora_r=4, loraplus_lr_ratio=16, learning_rate=1e-3,
          max_steps=2, output_dir=str(tmp_path), callbacks=[Rates()], **QUICK)
    lrs = seen["lrs"]
    assert lrs[-1] == pytest.approx(16e-3) and 1e-3 in [pytest.approx(x) for x in lrs], lrs   # B at 16x, A at the run's rate

def test_pissa_saved_for_the_original_base_and_card(tmp_path, llama):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    r = T.sft(llama, instruction_set(32, tasks=DOMAIN_TASKS), method="lora", lora_r=4, lora_init="pissa", learning_rate=3e-3,
              max_steps=3, output_dir=str(tmp_path), **QUICK)
    cfg = json.loads((tmp_path / "adapter_config.json").read_text())
    assert cfg["r"] == 8 and cfg["init_lora_weights"] is True   # plain LoRA of twice the rank
    tok = AutoTokenizer.from_pretrained(llama)
    ids = tok(["The river of the city is"], return_tensors="pt")
    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(llama), str(tmp_path)).eval()
    r.model.eval()
    with torch.no_grad(): diff = (loaded(**ids).logits - r.model(**ids).logits).abs().max().item()
    assert diff < 1e-4, diff
    card = (tmp_path / "README.md").read_text()
    assert "lora" in card and "## Training" in card

@pytest.mark.parametrize("stage,kw", [("dpo", {}), ("sft", dict(kl_to_base_weight=0.1)), ("sft", "monitor")])
def test_residual_init_refused_where_the_disabled_adapter_is_the_base(tmp_path, llama, stage, kw):
    data = preference_set(16) if stage == "dpo" else instruction_set(16, tasks=DOMAIN_TASKS)
    extra = dict(monitor=ForgettingMonitor(**builtin_inputs(n_general=4, n_mc=4, n_task=4), display="none")) if kw == "monitor" else kw
    with pytest.raises(ValueError, match="lora_init='pissa'"):
        getattr(T, stage)(llama, data, method="lora", lora_init="pissa", max_steps=1, output_dir=str(tmp_path / "out"), **QUICK, **extra)
    assert not (tmp_path / "out").exists()   # refused before anything was written
