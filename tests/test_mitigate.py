"""`lmtune.train.mitigate` on real (tiny) training: at the same number of steps, each term lowers the KL to the base
measured on held-out general text, against the same run without it."""
import tempfile
import pytest
torch = pytest.importorskip("torch")

from lmtune.corpus import general_corpus, instruction_set, DOMAIN_TASKS
from lmtune.models import tiny_model_dir
from lmtune.settings import RunSettings
from lmtune.train.mitigate import add_mitigations, general_batches

TINY = dict(vocab_size=300, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, pretrain_steps=150)
STEPS = 40

def kl_to_base(model, base, tok, texts):
    "Token-mean KL(p_base || p_model) over held-out general text, one text at a time."
    kl = n = 0
    with torch.no_grad():
        for t in texts:
            ids = tok(t, return_tensors="pt")["input_ids"]
            lp, bp = model(ids).logits[0, :-1].log_softmax(-1), base(ids).logits[0, :-1].log_softmax(-1)
            kl += (bp.exp() * (bp - lp)).sum().item(); n += ids.shape[1] - 1
    return kl / n

def train(s:RunSettings, seed:int=0):
    "Full fine-tune of the tiny model on domain instructions for STEPS steps with `s`'s mitigations; (model, base, tok)."
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments, DataCollatorForLanguageModeling
    from datasets import Dataset
    d = str(tiny_model_dir("llama", **TINY))
    tok = AutoTokenizer.from_pretrained(d)
    model, base = AutoModelForCausalLM.from_pretrained(d), AutoModelForCausalLM.from_pretrained(d).eval()
    rows = [r["prompt"] + r["response"] for r in instruction_set(400, tasks=DOMAIN_TASKS)]
    ds = Dataset.from_dict({"text": rows}).map(lambda b: tok(b["text"], truncation=True, max_length=64), batched=True,
                                               remove_columns=["text"])
    args = TrainingArguments(output_dir=tempfile.mkdtemp(), max_steps=STEPS, per_device_train_batch_size=16, learning_rate=3e-3,
                             report_to="none", use_cpu=True, disable_tqdm=True, save_strategy="no", seed=seed, logging_steps=1000)
    tr = Trainer(model=model, args=args, train_dataset=ds, data_collator=DataCollatorForLanguageModeling(tok, mlm=False))
    add_mitigations(tr, s, general_batches(tok, None, n=16))
    tr.train()
    return model.eval(), base, tok

@pytest.fixture(scope="module")
def held_out(): return general_corpus(24, seed=777)

@pytest.fixture(scope="module")
def plain(held_out):
    model, base, tok = train(RunSettings())
    return kl_to_base(model, base, tok, held_out)

@pytest.mark.parametrize("field,weight", [("kl_to_base_weight", 1.0), ("anchor_weight", 30.0), ("ewc_weight", 30.0)])
def test_each_term_lowers_the_kl_to_the_base(field, weight, plain, held_out):
    model, base, tok = train(RunSettings(**{field: weight}))
    kl = kl_to_base(model, base, tok, held_out)
    print(f"{field}={weight}: KL {kl:.4f} vs {plain:.4f}")
    assert kl < 0.8 * plain, f"{field}={weight}: KL to the base {kl:.4f} against {plain:.4f} without it"

def test_the_kl_term_acts_through_lmtunes_own_trainer(held_out, tmp_path):
    "Through `sft` (TRL's trainer, accelerate's wrapped forward) the KL term holds the model nearer its base, too."
    from lmtune.train.stages import sft
    from lmtune.train.monitor import ForgettingMonitor
    d = str(tiny_model_dir("llama", **TINY))
    kl = {}
    for w in (0.0, 1.0):
        m = ForgettingMonitor(general_texts=held_out, eval_every=1000, display="none")
        sft(d, instruction_set(200, tasks=DOMAIN_TASKS), method="full", max_steps=20, batch_size=16, seq_len=64,
            learning_rate=3e-3, kl_to_base_weight=w, output_dir=str(tmp_path / str(w)), progress_bar=False, callbacks=[m])
        kl[w] = m.rows[-1]["kl_to_base"]
    assert kl[1.0] < 0.8 * kl[0.0], kl
    assert "Against forgetting, in the loss: kl_to_base_weight=1." in m.notes # the monitor records what limited it
