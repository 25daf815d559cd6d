"""SFT with replay: task rows keep the chat template and completion-only loss, replay texts train as plain language
modelling, also with held-out eval data and with the completion-only loss switched off."""
import math
import pytest
import torch

torch.set_num_threads(1)
import lmtune.train.rows as TW
import lmtune.train.stages as T
from lmtune.corpus import general_corpus, instruction_set, to_messages
from lmtune.models import tiny_model_dir

QUICK = dict(batch_size=8, seq_len=64, logging_steps=1, save_steps=1000, progress_bar=False, max_steps=3, learning_rate=3e-3)

@pytest.fixture(scope="module")
def llama(): return str(tiny_model_dir("llama", vocab_size=300, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, pretrain_steps=150))

def test_replay_with_eval_data(llama, tmp_path):
    r = T.sft(llama, instruction_set(60), eval_data=instruction_set(16, seed=5), replay_data=general_corpus(50, seed=1),
              replay_fraction=0.25, output_dir=tmp_path, **QUICK)
    assert math.isfinite(r.metrics["eval_loss"]) and r.losses[-1]["step"] == 3

def test_chat_replay_masks(llama):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(llama)
    qa = instruction_set(8)
    chats = [dict(messages=to_messages(a)["messages"] + to_messages(b)["messages"]) for a, b in zip(qa[::2], qa[1::2])]
    texts = general_corpus(10, seed=2)
    mix = TW._sft_replay_rows(TW._load(chats), TW._load(texts), tok, 0.5, seed=0)
    assert len(mix) == 8
    replay = {tuple(tok(t + tok.eos_token)["input_ids"]) for t in texts}
    kinds = [tuple(r["input_ids"]) in replay for r in mix]
    assert sum(kinds) == 4
    for r, is_replay in zip(mix, kinds):
        if is_replay: assert all(r["completion_mask"])
        else:
            learned = tok.decode([i for i, k in zip(r["input_ids"], r["completion_mask"]) if k])
            assert learned.count(tok.eos_token) == 2 and "<|user|>" not in learned and "<|assistant|>" not in learned, learned

def test_replay_without_completion_only_loss(llama, tmp_path):
    r = T.sft(llama, instruction_set(60), replay_data=general_corpus(50, seed=1), replay_fraction=0.2,
              completion_only_loss=False, output_dir=tmp_path, **QUICK)
    assert all(math.isfinite(p["loss"]) for p in r.losses)
