"""A stage that starts from an adapter folds it into its base and trains a new adapter on top; the new adapter's
`base_model_name_or_path` names the first adapter's folder, so loading it (lmtune's loaders, `merge_adapter`) gives
base + A + B, not base + B."""
import json, os
import pytest
torch = pytest.importorskip("torch")

import lmtune.train.stages as T
from lmtune.corpus import DOMAIN_TASKS, instruction_set
from lmtune.models import tiny_model_dir
from lmtune.settings import RunSettings
from lmtune.train.model import _load_pretrained, model_config

TINY = dict(vocab_size=300, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, pretrain_steps=150) # as the other tests
QUICK = dict(batch_size=8, seq_len=64, logging_steps=2, save_steps=1000, progress_bar=False, method="lora", lora_r=4,
             learning_rate=1e-2, max_steps=4)

@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    llama = str(tiny_model_dir("llama", **TINY))
    d = tmp_path_factory.mktemp("chain")
    a = T.sft(llama, instruction_set(32, tasks=DOMAIN_TASKS), output_dir=str(d / "A"), **QUICK)
    b = T.sft(str(d / "A"), instruction_set(32, seed=5, tasks=DOMAIN_TASKS), output_dir=str(d / "B"), **QUICK)
    c = T.sft(b, instruction_set(32, seed=6, tasks=DOMAIN_TASKS), output_dir=str(d / "C"), **QUICK) # from a TrainResult
    return llama, d, a, b, c

def logits(model, llama):
    from transformers import AutoTokenizer
    ids = AutoTokenizer.from_pretrained(llama)(["The river of the city is"], return_tensors="pt")
    model.eval()
    with torch.no_grad(): return model(**ids).logits

def test_the_saved_adapter_names_the_adapter_it_was_trained_on(chain):
    llama, d, a, b, c = chain
    base = lambda x: json.loads((d / x / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert base("B") == os.path.realpath(d / "A") and base("C") == os.path.realpath(d / "B")
    assert model_config(str(d / "C"), RunSettings()).hidden_size == 32   # the config is read through the chain

@pytest.mark.parametrize("name", ["B", "C"])
def test_reloaded_chain_equals_the_trained_model(chain, name):
    llama, d, a, b, c = chain
    trained = {"B": b, "C": c}[name].model
    reloaded = _load_pretrained(str(d / name), RunSettings())
    assert (logits(reloaded, llama) - logits(trained, llama)).abs().max() < 1e-4
    just_b = _load_pretrained(str(d / "A"), RunSettings())   # base + A only: the chain's last adapter matters
    assert (logits(just_b, llama) - logits(trained, llama)).abs().max() > 1e-3

def test_merge_adapter_follows_the_chain(chain, tmp_path):
    from transformers import AutoModelForCausalLM
    from lmtune.train.adapters import merge_adapter
    llama, d, a, b, c = chain
    merge_adapter(str(d / "C"), output_dir=str(tmp_path / "merged"))
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "merged"))
    assert (logits(merged, llama) - logits(c.model, llama)).abs().max() < 1e-4
