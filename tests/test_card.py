"""`lmtune.train.card` on real tiny runs (the LoRA SFT case with a forgetting monitor is in nbs/train/14_card.ipynb):
pretraining (full weights, no base), bottleneck adapters, a run whose monitor loaded its suggested checkpoint, a base
that is a Hub id, and the merged folder `merge_adapter` writes from a run's `TrainResult`, with its card."""
import json, shutil
from pathlib import Path
import pytest
torch = pytest.importorskip("torch")
from huggingface_hub import ModelCard

import lmtune.train.stages as T
from lmtune.corpus import DOMAIN_TASKS, general_corpus, instruction_set
from lmtune.models import tiny_model_dir
from lmtune.train.adapters import merge_adapter
from lmtune.train.card import model_card, write_model_card

TINY = dict(vocab_size=300, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, pretrain_steps=150) # as the other tests
QUICK = dict(batch_size=8, seq_len=64, logging_steps=2, save_steps=1000, progress_bar=False)

@pytest.fixture(scope="module")
def llama(): return str(tiny_model_dir("llama", **TINY))

@pytest.fixture(scope="module")
def lora_run(llama, tmp_path_factory):
    out = tmp_path_factory.mktemp("card") / "sft-lora"
    return T.sft(llama, instruction_set(64, tasks=DOMAIN_TASKS), method="lora", lora_r=4, max_steps=6, learning_rate=3e-3,
                 output_dir=str(out), **QUICK)

def sections(text): return [l for l in text.splitlines() if l.startswith("## ")]

def test_pretraining_card_has_no_base(tmp_path, llama):
    cfg = dict(model_type="llama", hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
               num_key_value_heads=1, max_position_embeddings=64, vocab_size=300)
    r = T.pretrain(cfg, general_corpus(60), tokenizer=llama, max_steps=4, learning_rate=3e-3, output_dir=str(tmp_path), **QUICK)
    card = ModelCard.load(write_model_card(r))
    assert (card.data.library_name, card.data.base_model, card.data.tags) == ("transformers", None, ["lmtune", "pretrain", "full"])
    assert "**Started from**: random weights" in card.text and "full weights (`model.safetensors`)" in card.text
    assert sections(card.text) == ["## Model", "## Settings", "## Data", "## Training", "## Loading"]   # no monitor, no eval
    assert f"**Optimizer steps**: {json.loads((tmp_path / 'lmtune_result.json').read_text())['global_step']}" in card.text

def test_bottleneck_card(tmp_path, llama):
    r = T.sft(llama, instruction_set(64, tasks=DOMAIN_TASKS), method="bottleneck", bottleneck_size=8, max_steps=4,
              learning_rate=3e-3, output_dir=str(tmp_path), **QUICK)
    card = ModelCard.load(write_model_card(tmp_path))
    assert card.data.library_name == "lmtune" and "bottleneck" in card.data.tags
    assert "bottleneck adapter layers (`bottleneck_config.json`): size 8, after the attention and mlp block of each of 2 layers" in card.text
    assert f"**Trained parameters**: {r.metrics['trainable_params']:,} of" in card.text and "load_bottleneck(None," in card.text

def test_suggested_checkpoint_row_and_hub_base(tmp_path, lora_run):
    "The monitor's row is the one of the weights saved; an adapter whose base is a Hub id names it in `base_model`."
    d = tmp_path / "run"; shutil.copytree(lora_run.output_dir, d)
    (d / "monitor").mkdir()
    rows = [dict(step=s, general_loss=2.5 + s / 10, kl_to_base=s / 100) for s in (0, 3, 6)]
    (d / "monitor" / "state.json").write_text(json.dumps(dict(rows=rows, alert=None, notes=[
        "Loaded the suggested checkpoint checkpoint-3 (step 3) at the end of training."])))
    cfg = json.loads((d / "adapter_config.json").read_text())
    (d / "adapter_config.json").write_text(json.dumps({**cfg, "base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M"}))
    text = model_card(d)
    assert "against this model (step 3)" in text and "| `kl_to_base` | 0 | 0.03 | +0.03 |" in text, text
    assert ModelCard(text).data.base_model == "HuggingFaceTB/SmolLM2-135M"

def test_merged_folder_from_a_train_result(tmp_path, lora_run):
    "A run's TrainResult merges into a folder with the adapter model's logits; its card carries the run's facts."
    from transformers import AutoModelForCausalLM
    ids = torch.randint(0, 300, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad(): want = lora_run.model.eval()(input_ids=ids).logits
    merge_adapter(lora_run, output_dir=tmp_path / "merged")
    with torch.no_grad(): got = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")(input_ids=ids).logits
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    card = ModelCard.load(tmp_path / "merged" / "README.md")
    assert card.data.library_name == "transformers" and card.data.tags == ["lmtune", "sft", "lora", "merged"]
    assert "## Training" in card.text and f"adapter in `{lora_run.output_dir}` merged into its base" in card.text
    assert f"**Base model**: `{json.loads((Path(lora_run.output_dir) / 'adapter_config.json').read_text())['base_model_name_or_path']}`" in card.text
