"""`lmtune.train.monitor.ForgettingMonitor` on real (tiny) training runs: its numbers against plain torch, early stopping on a
forgetting budget, the trainer's log and TensorBoard, a plain transformers Trainer, resuming and the Stop request."""
import glob, json, math, time
from pathlib import Path
import pytest
torch = pytest.importorskip("torch")

from lmtune.corpus import general_corpus, multiple_choice_set, instruction_set, exact_match, DOMAIN_TASKS
from lmtune.models import tiny_model_dir
from lmtune.train.monitor import ForgettingMonitor, LOG_PREFIX

TINY = dict(vocab_size=300, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, pretrain_steps=150) # shared with the other tests
GENERAL, MC = general_corpus(20, seed=1000), multiple_choice_set(12, seed=1001)
TASK = instruction_set(10, seed=1002, tasks=DOMAIN_TASKS)
TRAIN = instruction_set(300, tasks=DOMAIN_TASKS)
COMMON = dict(batch_size=16, seq_len=64, logging_steps=5, save_steps=1000, progress_bar=False)

@pytest.fixture(scope="module")
def model_dir(): return str(tiny_model_dir("llama", **TINY))

def monitor(**kw):
    return ForgettingMonitor(general_texts=GENERAL, mc=MC, task_examples=TASK, **{**dict(eval_every=10, max_new_tokens=6, fewshot=0,
                                                                                      display="none"), **kw})

# --- an independent computation: one text at a time, plain torch, no lmtune code ---
def plain_logprobs(model, ids):
    with torch.no_grad(): return model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)

def plain_general(model, base, tok, texts, seq_len=64):
    "(general_loss, kl_to_base): token-weighted over every predicted token of every text."
    nll = kl = 0.0; n = 0
    for t in texts:
        ids = tok(t, truncation=True, max_length=seq_len)["input_ids"]
        if len(ids) < 2: continue
        lp, bp = plain_logprobs(model, ids)[:-1], plain_logprobs(base, ids)[:-1]
        nll -= lp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum().item()
        kl += torch.nn.functional.kl_div(lp, bp, log_target=True, reduction="sum").item()
        n += len(ids) - 1
    return nll / n, kl / n

def plain_mc(model, tok, items):
    right = []
    for it in items:
        scores = []
        for c in it["choices"]:
            ctx = tok(it["question"], add_special_tokens=False)["input_ids"]
            whole = tok(it["question"] + " " + c, add_special_tokens=False)["input_ids"]
            lp = plain_logprobs(model, whole)
            scores.append(sum(lp[j - 1, whole[j]].item() for j in range(len(ctx), len(whole))))
        right.append(int(scores.index(max(scores)) == it["answer"]))
    return right

def chat_ids(tok, prompt, answer=None):
    msgs = [dict(role="user", content=prompt.strip())] + ([dict(role="assistant", content=answer)] if answer is not None else [])
    return list(tok.apply_chat_template(msgs, add_generation_prompt=answer is None, tokenize=True, return_dict=True)["input_ids"])

def plain_task(model, tok, rows, max_new_tokens=6):
    "(task_loss over the answer tokens, greedy answers)"
    nll, n, answers = 0.0, 0, []
    for r in rows:
        p, full = chat_ids(tok, r["prompt"]), chat_ids(tok, r["prompt"], r["response"])
        assert full[:len(p)] == p
        lp = plain_logprobs(model, full)
        nll -= sum(lp[j - 1, full[j]].item() for j in range(len(p), len(full))); n += len(full) - len(p)
        ids = list(p)
        for _ in range(max_new_tokens):
            nxt = int(plain_logprobs(model, ids)[-1].argmax())
            if nxt == tok.eos_token_id: break
            ids.append(nxt)
        answers.append(tok.decode(ids[len(p):], skip_special_tokens=True).strip())
    return nll / n, answers

def check_row(row, model, base, tok):
    gl, kl = plain_general(model, base, tok, GENERAL)
    assert row["general_loss"] == pytest.approx(gl, rel=1e-4)
    assert row["kl_to_base"] == pytest.approx(kl, rel=1e-3, abs=1e-6)
    right = plain_mc(model, tok, MC)
    assert row["mc_accuracy"] == pytest.approx(sum(right) / len(right))
    tl, answers = plain_task(model, tok, TASK)
    assert row["task_loss"] == pytest.approx(tl, rel=1e-4)
    assert row["exact_match"] == pytest.approx(exact_match(answers, [r["response"] for r in TASK]))
    return right, answers

def tensorboard_scalars(folder)->dict:
    "Every scalar TensorBoard event under `folder`: {tag: [(step, value), ...]}."
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    files = glob.glob(str(Path(folder) / "**" / "events.out.tfevents*"), recursive=True)
    assert files, "TensorBoard wrote no event file"
    scalars = {}
    for f in files:
        ea = EventAccumulator(f); ea.Reload()
        for tag in ea.Tags()["scalars"]: scalars.setdefault(tag, []).extend((e.step, e.value) for e in ea.Scalars(tag))
    return scalars

@pytest.mark.parametrize("method,lr", [("lora", 5e-3), ("full", 1e-3)])
def test_numbers_match_plain_torch_at_base_and_end(model_dir, tmp_path, method, lr):
    "At step 0 and at the end the monitor's numbers equal an independent computation; they reach the trainer's log and TensorBoard."
    pytest.importorskip("tensorboard")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from lmtune.train.stages import sft
    m = monitor()
    run = sft(model_dir, TRAIN, method=method, learning_rate=lr, max_steps=20, output_dir=str(tmp_path), callbacks=[m],
              report_to="tensorboard", **COMMON)
    h = m.history
    assert list(h.step) == [0, 10, 20]
    assert m.base.mode == ("adapter" if method == "lora" else "cache")
    tok, base = AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir).eval()
    b = m.rows[0]
    assert b["kl_to_base"] == 0.0 and b["general_loss_delta"] == 0.0 and b["mc_flips"] == 0
    base_right, _ = check_row(b, base, base, tok) # step 0 is the base model
    run.model.eval()
    right, _ = check_row(m.rows[-1], run.model, base, tok) # the end: the trained model
    assert m.rows[-1]["kl_to_base"] > 1e-3 # it did move
    assert m.rows[-1]["mc_flips"] == sum(1 for a, c in zip(base_right, right) if a and not c)
    # the trainer's log and TensorBoard
    assert [e["step"] for e in run.log_history if LOG_PREFIX + "kl_to_base" in e] == [0, 10, 20]
    assert {5, 10, 15, 20} <= {e["step"] for e in run.log_history if "loss" in e}, "the trainer's own logging still happens at evaluation steps"
    assert m.rows[-1]["train_loss"] == [e["loss"] for e in run.log_history if e.get("step") == 20 and "loss" in e][0]
    scalars = tensorboard_scalars(tmp_path)
    for k in ("general_loss", "kl_to_base", "mc_accuracy", "mc_flips", "task_loss", "exact_match", "chrf"):
        got = sorted(scalars[f"eval/{k}"])
        assert [s for s, _ in got] == [0, 10, 20], k
        assert got[-1][1] == pytest.approx(m.rows[-1][k], rel=1e-5, abs=1e-6), k

def test_early_stopping_on_a_forgetting_budget(model_dir, tmp_path):
    "Full fine-tuning of this small model forgets fast; the monitor stops at the first evaluation over budget and restores the best."
    from lmtune.train.stages import sft
    m = monitor(eval_every=2, max_kl=0.3, task_metric="task_loss")
    run = sft(model_dir, TRAIN, method="full", learning_rate=1e-3, max_steps=40, output_dir=str(tmp_path), callbacks=[m], **COMMON)
    h = m.history
    assert h.over_budget.iloc[-1] and not h.over_budget.iloc[:-1].any()
    stop = int(h.step.iloc[-1])
    assert stop < 40 and run.log_history[-1]["step"] == stop, "training stopped at that evaluation"
    assert (tmp_path / f"checkpoint-{stop}").is_dir(), "it stopped at a checkpoint"
    assert "forgetting budget" in m.status and m.alert and any("learning rate" in x for x in m.alert["mitigations"])
    s = m.suggested
    assert s is not None and s["forgetting"] <= 0.3 and s["step"] < stop and Path(s["checkpoint"]).is_dir()
    # the returned (and saved) model is the suggested checkpoint's: measured again, it is back within the budget
    now = m.suite.measure(run.model, m.base, generate=False)
    assert now["kl_to_base"] == pytest.approx(s["forgetting"], rel=1e-4) and now["task_loss"] == pytest.approx(-s["learning"], rel=1e-4)
    assert any("Loaded the suggested checkpoint" in n for n in m.notes)

def test_plain_transformers_trainer(model_dir, tmp_path):
    "Any transformers Trainer: the tokenizer comes from processing_class, the metrics go through trainer.log."
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments, DataCollatorForLanguageModeling
    tok = AutoTokenizer.from_pretrained(model_dir)
    ds = datasets.Dataset.from_dict(dict(text=general_corpus(200, seed=5))).map(lambda r: tok(r["text"]), remove_columns=["text"])
    m = ForgettingMonitor(general_texts=GENERAL, mc=MC, eval_every=5, display="none")
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=10, per_device_train_batch_size=8, learning_rate=1e-3,
                             logging_steps=5, save_steps=1000, report_to="none", use_cpu=True, disable_tqdm=True)
    tr = Trainer(model=AutoModelForCausalLM.from_pretrained(model_dir), args=args, train_dataset=ds, processing_class=tok,
                 data_collator=DataCollatorForLanguageModeling(tok, mlm=False), callbacks=[m])
    tr.train()
    assert list(m.history.step) == [0, 5, 10]
    assert [e["step"] for e in tr.state.log_history if LOG_PREFIX + "general_loss" in e] == [0, 5, 10]
    assert m.rows[-1]["train_loss"] is not None and m.rows[-1]["kl_to_base"] > 0

def test_resume_keeps_the_base_measurements(model_dir, tmp_path):
    "Stopped at step 20 (the Stop button's path), the same call again resumes there; a new monitor reads the saved base."
    from transformers import TrainerCallback
    from lmtune.train.stages import sft
    class PressStop(TrainerCallback): # what a click does, at a known step
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 20: m1.request_stop()
    m1 = monitor()
    kw = dict(method="full", learning_rate=1e-3, max_steps=30, output_dir=str(tmp_path), **COMMON)
    sft(model_dir, TRAIN, callbacks=[PressStop(), m1], **kw)
    assert list(m1.history.step) == [0, 10, 20] and m1.status == "stopped by you at step 20"
    assert (tmp_path / "checkpoint-20").is_dir() and (tmp_path / "monitor" / "base_logprobs.pt").exists()
    m2 = monitor()
    run = sft(model_dir, TRAIN, callbacks=[m2], **kw)
    assert run.resumed_from and run.resumed_from.endswith("checkpoint-20")
    assert list(m2.history.step) == [0, 10, 20, 30]
    keys = ("step", "general_loss", "kl_to_base", "mc_accuracy", "task_loss", "exact_match")
    assert [[r[k] for k in keys] for r in m2.rows[:3]] == [[r[k] for k in keys] for r in m1.rows] and m2.rows[0]["kl_to_base"] == 0.0
    assert m2.rows[-1]["kl_to_base"] > m1.rows[1]["kl_to_base"] > 0 # measured against the original base, not the checkpoint
    assert any("Resumed at step 20" in n for n in m2.notes)

def test_stop_request_stops_at_a_checkpoint(model_dir, tmp_path):
    "What the Stop button does, from another thread: training ends after the current step, saved, and measured."
    from lmtune.train.stages import sft
    m = monitor(eval_every=1000)
    handle = m.start(lambda: sft(model_dir, TRAIN, method="lora", learning_rate=5e-3, max_steps=2000, output_dir=str(tmp_path),
                                 callbacks=[m], **COMMON))
    deadline = time.time() + 120
    while m.status != "training" and time.time() < deadline: time.sleep(0.1)
    time.sleep(1.0)
    handle.stop()
    run = handle.result(timeout=120)
    step = m.rows[-1]["step"]
    assert 0 < step < 2000 and run.log_history[-1]["step"] == step
    assert m.status == f"stopped by you at step {step}"
    ck = tmp_path / f"checkpoint-{step}"
    assert ck.is_dir() and json.loads((ck / "trainer_state.json").read_text())["global_step"] == step

def test_a_stop_belongs_to_the_run_it_was_pressed_in(model_dir, tmp_path):
    "A Stop pressed after a run ended is refused (it returns False) and the next run trains to its end."
    from lmtune.train.stages import sft
    m = monitor(eval_every=2)
    kw = dict(method="lora", learning_rate=5e-3, max_steps=4, callbacks=[m], **COMMON)
    sft(model_dir, TRAIN, output_dir=str(tmp_path / "a"), **kw)
    assert m.request_stop() is False
    sft(model_dir, TRAIN, output_dir=str(tmp_path / "b"), **kw)
    assert list(m.history.step) == [0, 2, 4] and m.status == "finished at step 4"

def test_a_monitor_attached_twice_records_each_point_once(model_dir, tmp_path):
    "`callbacks=[m], monitor=m` (and `attach` after `callbacks=[m]`) measures each point once."
    from lmtune.train.stages import sft
    m = monitor(eval_every=2)
    sft(model_dir, TRAIN, method="lora", learning_rate=5e-3, max_steps=4, output_dir=str(tmp_path), callbacks=[m], monitor=m,
        **COMMON)
    assert list(m.history.step) == [0, 2, 4]

def test_bad_input_fails_before_training():
    with pytest.raises(ValueError, match="nothing to measure"): ForgettingMonitor()
    with pytest.raises(TypeError, match="eval_evry.*eval_every"): ForgettingMonitor(general_texts=GENERAL, eval_evry=5)
    with pytest.raises(ValueError, match="max_kl=-1"): ForgettingMonitor(general_texts=GENERAL, max_kl=-1)
    with pytest.raises(ValueError, match="mc item 0"): ForgettingMonitor(mc=[dict(question="q", choices=["a", "b"])])
    with pytest.raises(ValueError, match="all the same"): ForgettingMonitor(mc=[dict(question="q", choices=["a", "a"], answer=0)])

def test_dpo_and_continued_pretraining(model_dir, tmp_path):
    "The other lmtune stages: DPO scores the chosen answers, continued pretraining measures the loss of domain text."
    from lmtune.corpus import preference_set, domain_corpus
    from lmtune.train.stages import dpo, continue_pretraining
    m = ForgettingMonitor(general_texts=GENERAL, task_examples=preference_set(6, seed=3), eval_every=2, max_new_tokens=4, fewshot=0, display="none")
    dpo(model_dir, preference_set(64), method="lora", max_steps=4, output_dir=str(tmp_path / "dpo"), callbacks=[m], **{**COMMON, "batch_size": 8})
    assert list(m.history.step) == [0, 2, 4] and m.rows[0]["kl_to_base"] == 0.0 and "exact_match" in m.rows[-1]
    m = ForgettingMonitor(general_texts=GENERAL, task_examples=domain_corpus(6, seed=3), eval_every=2, display="none")
    continue_pretraining(model_dir, domain_corpus(200), method="full", max_steps=4, output_dir=str(tmp_path / "cpt"), callbacks=[m],
                         **{**COMMON, "batch_size": 8})
    assert m.task_metric == "task_loss" and m.rows[-1]["task_loss"] < m.rows[0]["task_loss"] and m.rows[-1]["kl_to_base"] > 0

def test_spikes_and_the_training_curve(model_dir, tmp_path):
    "Loss spikes are lmtune's DivergenceGuard's; with lmtune's trainer the curve has every step (the guard's history)."
    from lmtune.train.stages import sft
    m = monitor(eval_every=10)
    sft(model_dir, TRAIN, method="lora", learning_rate=5e-3, max_steps=10, output_dir=str(tmp_path), callbacks=[m], **COMMON)
    assert m._guard is not None and [s for s, _ in m._train_curve()] == list(range(1, 11))
    for i in range(12): m.on_log(None, type("S", (), dict(global_step=100 + i))(), None, logs=dict(loss=1.0 + 0.01 * (i % 3)))
    m.on_log(None, type("S", (), dict(global_step=112))(), None, logs=dict(loss=50.0))
    assert m._spikes[-1] == (112, 50.0) and len(m._spikes) == 1
