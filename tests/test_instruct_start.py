"""SFT from an instruct model keeps that model's chat template by default (what the advisor's plans promise:
`lmtune.plan.advisor.START_NOTES`). A tiny model whose tokenizer carries its own, distinctive template is fine-tuned for
a few steps on prompt/response rows: the rows it trained on are rendered with that template (its markers in the
tokens, the loss on the answers only), the result keeps the template, and a base model without one trains on plain
text instead."""
import shutil
import pytest
import torch

torch.set_num_threads(1)
import lmtune.train.stages as T
from lmtune.corpus import instruction_set
from lmtune.models import tiny_model_dir
from lmtune.plan.advisor import START_NOTES, advise
from transformers import AutoTokenizer, TrainerCallback

USER, BOT = "[[INSTRUCT-USER]]", "[[INSTRUCT-BOT]]"   # plain text, so they show only if the template rendered them
TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'user' %}{{ '" + USER + " ' + m['content'] + '\n' }}"
            "{% else %}{{ '" + BOT + " ' + m['content'] + eos_token + '\n' }}{% endif %}{% endfor %}"
            "{% if add_generation_prompt %}{{ '" + BOT + " ' }}{% endif %}")
QUICK = dict(batch_size=4, seq_len=96, logging_steps=1, save_steps=1000, progress_bar=False, max_steps=3, learning_rate=3e-3)

@pytest.fixture(scope="module")
def tiny(): return tiny_model_dir("llama", vocab_size=300, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, pretrain_steps=150)

def with_template(src, dst, template):
    "A copy of the model folder `src` whose tokenizer carries `template` (None: no chat template, a base model)."
    shutil.copytree(src, dst)
    tok = AutoTokenizer.from_pretrained(dst)
    tok.chat_template = template
    for f in dst.glob("chat_template*"): f.unlink()      # the copy's own template file, if any, would come back on load
    tok.save_pretrained(dst)
    assert AutoTokenizer.from_pretrained(dst).chat_template == template
    return dst

class TrainRows(TrainerCallback):
    "Keeps the tokenised rows the trainer trains on (its train dataloader's dataset)."
    rows = None
    def on_train_begin(self, args, state, control, train_dataloader=None, **kw): self.rows = train_dataloader.dataset

def loss_mask(rows)->list:
    "Which tokens of each row carry loss: TRL's `labels` (-100: none) when it made them, else lmtune's `completion_mask`."
    if "labels" in rows.column_names: return [[l != -100 for l in ls] for ls in rows["labels"]]
    return rows["completion_mask"]

def trained_rows(model_dir, out):
    seen = TrainRows()
    r = T.sft(str(model_dir), instruction_set(24), output_dir=out, callbacks=[seen], **QUICK)
    return r, seen.rows

def test_sft_from_an_instruct_model_uses_its_chat_template(tiny, tmp_path):
    model = with_template(tiny, tmp_path / "instruct", TEMPLATE)
    r, rows = trained_rows(model, tmp_path / "out")
    tok = r.tokenizer
    assert len(rows) > 0 and r.losses[-1]["step"] == QUICK["max_steps"]
    for ids, mask in zip(rows["input_ids"], loss_mask(rows)):
        text = tok.decode(ids)
        assert text.startswith(USER) and f"\n{BOT} " in text, text            # rendered by the model's own template
        answer = tok.decode([i for i, m in zip(ids, mask) if m])
        assert USER not in answer and BOT not in answer and answer.strip().endswith(tok.eos_token), answer   # loss on the answer
    # the result keeps the template: in memory, in the saved folder, and when the folder is loaded again
    assert r.tokenizer.chat_template == TEMPLATE
    assert AutoTokenizer.from_pretrained(r.output_dir).chat_template == TEMPLATE

def test_sft_from_a_base_model_without_a_template_trains_on_plain_text(tiny, tmp_path):
    model = with_template(tiny, tmp_path / "base", None)
    r, rows = trained_rows(model, tmp_path / "out")
    first = instruction_set(24)[0]
    texts = [r.tokenizer.decode(ids) for ids in rows["input_ids"]]
    assert not any(USER in t or BOT in t or "<|user|>" in t for t in texts)
    assert any(t.startswith(first["prompt"].rstrip() + "\n") for t in texts), texts[:2]    # prompt, newline, response

def test_the_advisors_plans_say_so():
    "The sentences the advisor's SFT stages carry are the behaviour the tests above check."
    sft = advise(goal="behavior", labeled_examples=300, prompting_works="partly").option("fine-tuning").plan[1]
    assert sft.note.startswith(START_NOTES["instruct"]) and "chat template" in START_NOTES["instruct"]
    base = advise(goal="behavior", labeled_examples=300, prompting_works="partly", start_from="base").option("fine-tuning").plan[1]
    assert base.note.startswith(START_NOTES["base"]) and "plain text" in START_NOTES["base"]
