"""`lmtune.train.continual.continual` end to end on the shared tiny pretrained Llama: a folder stream with a poisoned
batch (rejected; the accepted model's general loss, measured here with plain torch, stays within the budget of the
base's), a restart that trains nothing again, a batch that arrives while the call polls, kills at the two moments that
matter (after an accepted update is logged, and before), and a call with another base refused."""
import json, shutil, threading, time
import pytest
torch = pytest.importorskip("torch")
torch.set_num_threads(1)

import lmtune.train.continual as C
from lmtune.corpus import general_corpus, instruction_set, multiple_choice_set, GENERAL_TASKS, DOMAIN_TASKS
from lmtune.models import tiny_model_dir
from lmtune.train.monitor import ForgettingMonitor

TINY = dict(vocab_size=300, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, pretrain_steps=150) # shared
GENERAL = general_corpus(32, seed=1000) # held out: the tiny model was pretrained on general_corpus(seed=0)
MAX_KL, MAX_RISE = 0.25, 0.35 # nats/token
QUICK = dict(learning_rate=1e-3, num_epochs=2, batch_size=8, seq_len=96, save_steps=1000, progress_bar=False)
GOOD1 = instruction_set(24, seed=7, tasks=GENERAL_TASKS)
POISON = [dict(prompt=r["prompt"], response=" ".join(["the"] * 40)) for r in instruction_set(96, seed=8)] # one token
GOOD2 = instruction_set(24, seed=9, tasks=DOMAIN_TASKS)
GOOD3 = instruction_set(16, seed=11, tasks=GENERAL_TASKS)

@pytest.fixture(scope="module")
def model_dir(): return str(tiny_model_dir("llama", **TINY))

def monitor(**inputs):
    return ForgettingMonitor(general_texts=GENERAL, max_kl=MAX_KL, max_general_loss_delta=MAX_RISE, display="none",
                             **inputs)

def write_batch(path, rows):
    "A batch file as a writer should make one: written under a dot name, renamed when whole."
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows)); tmp.rename(path)

def plain_general_loss(folder):
    "Mean next-token loss over every predicted token of GENERAL (cut at 96 tokens), one text at a time, plain torch."
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok, m = AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(folder).eval()
    nll = n = 0
    for t in GENERAL:
        ids = tok(t, truncation=True, max_length=96)["input_ids"]
        with torch.no_grad(): lp = m(input_ids=torch.tensor([ids])).logits[0, :-1].float().log_softmax(-1)
        nll -= lp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum().item(); n += len(ids) - 1
    return nll / n

def log_lines(out): return (out / C.LOG_FILE).read_text().splitlines()

def test_poisoned_batch_restart_and_polling(model_dir, tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "continual"
    inbox.mkdir()
    for name, rows in (("001.jsonl", GOOD1), ("002.jsonl", POISON), ("003.jsonl", GOOD2)):
        write_batch(inbox / name, rows)
    r = C.continual(model_dir, inbox, monitor=monitor(), output_dir=out, **QUICK)
    assert [(e["source"], e["decision"]) for e in r.log] == [("001.jsonl", "accepted"), ("002.jsonl", "rejected"),
                                                             ("003.jsonl", "accepted")], r.table()
    bad = r.log[1]["metrics"]
    assert bad["kl_to_base"] > MAX_KL and bad["general_loss_delta"] > MAX_RISE
    assert "kl_to_base" in r.log[1]["reason"] and "kl_to_accepted" in r.log[1]["reason"]
    assert r.accepted_update == 3 and r.log[2]["started_from"] == 1 # the third trained from the first, not the poison
    base, accepted = plain_general_loss(model_dir), plain_general_loss(r.accepted_dir)
    assert 0 < accepted - base <= MAX_RISE
    assert accepted - base == pytest.approx(r.log[2]["metrics"]["general_loss_delta"], abs=1e-4) # the log is right
    assert bad["general_loss_delta"] > 2 * (accepted - base) # the poisoned candidate was far worse than what was kept
    buffer = C.ReplayBuffer.load(out / C.BUFFER_FILE, 1000)
    assert len(buffer) == 48 and not any("the the the" in row["completion"] for row in buffer.rows)
    assert len(log_lines(out)) == 3 and not (out / C.PENDING).exists() and list((out / C.UPDATES).iterdir()) == []

    again = C.continual(model_dir, inbox, monitor=monitor(), output_dir=out, **QUICK) # a restart: nothing trains again
    assert (again.new, again.accepted_update, len(log_lines(out))) == (0, 3, 3)
    assert plain_general_loss(again.accepted_dir) == pytest.approx(accepted, abs=1e-6)

    timer = threading.Timer(3.0, lambda: write_batch(inbox / "004.jsonl", GOOD3)) # arrives while the call waits
    timer.start()
    t = time.monotonic()
    polled = C.continual(model_dir, inbox, monitor=monitor(), output_dir=out, poll_s=0.2, timeout_s=4, **QUICK)
    timer.join()
    assert polled.new == 1 and polled.log[-1]["source"] == "004.jsonl" and "timeout_s=4" in polled.stopped
    assert time.monotonic() - t >= 4 + 3 and len(log_lines(out)) == 4
    assert [json.loads(l)["update"] for l in log_lines(out)] == [1, 2, 3, 4]

def test_kills_and_another_base(model_dir, tmp_path, monkeypatch):
    out, stream = tmp_path / "continual", [GOOD1, GOOD3]
    real_publish, real_append = C.publish_model, C.append_log
    def publish_killed(src, accepted, update): # a kill once update 1 is logged, before accepted/ holds it
        if update == 1: raise KeyboardInterrupt("killed")
        return real_publish(src, accepted, update)
    monkeypatch.setattr(C, "publish_model", publish_killed)
    spec = "tiny:llama?" + "&".join(f"{k}={v}" for k, v in TINY.items()) # the same base, named as a spec
    with pytest.raises(KeyboardInterrupt): C.continual(spec, stream, monitor=monitor(), output_dir=out, **QUICK)
    assert [json.loads(l)["decision"] for l in log_lines(out)] == ["accepted"]
    assert C.accepted_update(out / C.ACCEPTED) == 0 and (out / C.PENDING).is_dir()

    monkeypatch.setattr(C, "publish_model", real_publish)
    def append_killed(path, entry): raise KeyboardInterrupt("killed") # after pending/ is written, before the log line
    monkeypatch.setattr(C, "append_log", append_killed)
    with pytest.raises(KeyboardInterrupt): C.continual(model_dir, stream, monitor=monitor(), output_dir=out, **QUICK)
    assert C.accepted_update(out / C.ACCEPTED) == 1 and len(log_lines(out)) == 1 # the first call's move was finished
    assert (out / C.PENDING).is_dir() and (out / C.UPDATES / "00002").is_dir() # update 2 decided, not logged

    slower = dict(QUICK, learning_rate=5e-4) # the same batch with other settings: its interrupted run is discarded
    with pytest.raises(KeyboardInterrupt): C.continual(model_dir, stream, monitor=monitor(), output_dir=out, **slower)
    assert len(log_lines(out)) == 1 and (out / C.PENDING).is_dir()

    monkeypatch.setattr(C, "append_log", real_append) # the same settings again: the run of update 2 is finished, reused
    more = dict(mc=multiple_choice_set(8, seed=1001), task_examples=instruction_set(4, seed=1002), max_new_tokens=6)
    r = C.continual(model_dir, stream, monitor=monitor(**more), output_dir=out, **slower)
    assert r.new == 1 and [e["decision"] for e in r.log] == ["accepted", "accepted"] and r.accepted_update == 2
    assert r.log[1]["source"] == "batch 1" and r.log[1]["learning_rate"] == 5e-4 and len(log_lines(out)) == 2
    assert {"mc_accuracy", "task_loss", "exact_match"} <= set(r.log[1]["metrics"]) # all the monitor measures is logged
    assert len(C.ReplayBuffer.load(out / C.BUFFER_FILE, 1000)) == len(GOOD1) + len(GOOD3)
    assert not (out / C.PENDING).exists() and list((out / C.UPDATES).iterdir()) == []

    other = tmp_path / "other-base"
    shutil.copytree(model_dir, other)
    with pytest.raises(ValueError, match="continues the base"):
        C.continual(str(other), stream, monitor=monitor(), output_dir=out, **QUICK)
    assert len(log_lines(out)) == 2
