"""A run killed with SIGKILL mid-way and started again with the same call resumes from its last complete
checkpoint and ends exactly where an uninterrupted run ends (tiny llama, CPU, fixed seed and data order)."""
import json, os, signal, subprocess, sys, textwrap, time
from pathlib import Path
import pytest

STEPS, SAVE = 40, 10

SCRIPT = textwrap.dedent('''
    import json, sys, time
    from transformers import TrainerCallback
    import lmtune.train.records as TR
    import lmtune.train.stages as T
    from lmtune.corpus import general_corpus, instruction_set
    from lmtune.models import build_tokenizer, tiny_model
    out, slow, stage = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    texts = general_corpus(300, seed=1)
    tok = build_tokenizer(texts, vocab_size=300)

    class Slow(TrainerCallback):  # gives the test time to kill between checkpoints; notes the steps this process ran
        steps = []
        def on_step_end(self, args, state, control, **kw): self.steps.append(state.global_step); time.sleep(slow)

    kw = dict(max_steps=%d, save_steps=%d, logging_steps=1, batch_size=4, seq_len=32, seed=7, output_dir=out,
              progress_bar=False, callbacks=[Slow()])
    if stage == "pretrain":
        r = T.pretrain(dict(model_type="llama", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64, vocab_size=300),
                       texts, tokenizer=tok, learning_rate=3e-3, **kw)
    else:  # LoRA SFT: the adapter, its optimizer state and the data order must all come back
        model = tiny_model("llama", tok, seed=3, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1)
        r = T.sft(model, instruction_set(200), tokenizer=tok, method="lora", lora_r=4, learning_rate=1e-2, **kw)
    json.dump(dict(losses=r.losses, final_loss=r.final_loss, resumed_from=r.resumed_from, ran=Slow.steps), open(out + ".json", "w"))
''' % (STEPS, SAVE))

def _start(script, out, slow, stage):
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, str(script), str(out), str(slow), stage], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

def _finish(p, timeout=120):
    _, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err[-3000:]

@pytest.mark.parametrize("stage", ["pretrain", "sft-lora"])
def test_killed_run_resumes_to_the_same_final_loss(tmp_path, stage):
    script = tmp_path / "run.py"; script.write_text(SCRIPT)
    ref, run = tmp_path / "ref", tmp_path / "run"
    p_ref = _start(script, ref, 0.0, stage)           # uninterrupted, in parallel with the run we kill
    p = _start(script, run, 0.05, stage)
    t0 = time.time()
    while not (run / f"checkpoint-{2 * SAVE}" / "trainer_state.json").exists():
        assert p.poll() is None, "the run finished before it could be killed: " + p.stderr.read()[-2000:]
        assert time.time() - t0 < 90, "no checkpoint appeared"
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL); p.wait()
    assert p.returncode == -signal.SIGKILL
    assert not (run.parent / "run.json").exists()      # it really died before the end
    _finish(p_ref)
    _finish(_start(script, run, 0.0, stage))                  # the same call again
    a, b = json.loads((tmp_path / "ref.json").read_text()), json.loads((tmp_path / "run.json").read_text())
    assert a["resumed_from"] is None
    assert b["resumed_from"] is not None
    ckpt = int(b["resumed_from"].rsplit("-", 1)[1])
    assert ckpt >= 2 * SAVE and b["ran"] == list(range(ckpt + 1, STEPS + 1))  # only the steps after the checkpoint ran again
    assert a["ran"] == list(range(1, STEPS + 1))
    assert [p["step"] for p in b["losses"]] == list(range(1, STEPS + 1))   # the log continues across the kill
    assert b["final_loss"] == pytest.approx(a["final_loss"], rel=1e-5, abs=1e-6)
    for x, y in zip(a["losses"], b["losses"]): assert y["loss"] == pytest.approx(x["loss"], rel=1e-5, abs=1e-6), (x, y)


# ---- every field of the run description is compared on resume (issue 8) ---------------------------------------------
import lmtune.train.records as TR
import lmtune.train.stages as T
from lmtune.settings import FIELDS, RunSettings

# a different valid value for each field that is not a plain bool or number (those get `not v` / `v + 1` / `v + 0.1`)
OTHER = dict(method="full", precision="fp32", optim="sgd", lr_scheduler_type="linear", attn_implementation="eager", lora_alpha=8, lora_target_modules=["q_proj"],
             strategy="zero2", learning_rate=1e-3, lr_preset="pretrain", max_steps=5, packing=True, early_stopping=1,
             eval_steps=50, save_total_limit=3, output_dir="runs/elsewhere", resume=False, report_to="tensorboard",
             bottleneck_placement="pfeiffer", lora_init="olora", loraplus_lr_ratio=16.0)
CONTEXT = dict(offload_optimizer=dict(strategy="zero2"), offload_params=dict(strategy="zero3"),  # settings the change needs to be valid
               tensor_parallel=dict(num_gpus=2), pipeline_parallel=dict(num_gpus=2), num_gpus=dict(), use_dora=dict(method="lora"),
               use_rslora=dict(method="lora"), lora_init=dict(method="lora"), loraplus_lr_ratio=dict(method="lora"))

def _other(k, v):
    "A valid value of field `k` that differs from its default `v`."
    if k in OTHER: return OTHER[k]
    if isinstance(v, bool): return not v
    if isinstance(v, int): return v + 1
    if isinstance(v, float): return round(v + 0.1, 6)
    raise AssertionError(f"add a different value for the new field {k}={v!r} to OTHER")

def _record(**kw):
    s = RunSettings(**kw)
    return TR.run_record("sft", s.method or "lora", s.learning_rate or 2e-4, s, "model", "data")

@pytest.mark.parametrize("field", FIELDS)
def test_a_resume_with_one_field_changed_is_refused_naming_it(field):
    base = CONTEXT.get(field, {})
    old, new = _record(**base), _record(**dict(base, **{field: _other(field, getattr(RunSettings(**base), field))}))
    changes = TR.run_changes(old, new)
    if field in TR.NON_TRAINING_FIELDS: assert changes == {}, changes
    else:
        assert list(changes) == [field], changes
        was, now = changes[field]
        if field not in TR.RESOLVED_FIELDS: assert (was, now) == (old["settings"][field], new["settings"][field])

def test_same_rows_per_step_is_the_same_run():
    assert TR.run_changes(_record(batch_size=8), _record(batch_size=2, gradient_accumulation_steps=4)) == {}

def test_a_real_resume_with_a_changed_field_is_refused(tmp_path):
    "End to end: a run with checkpoints, then the same call with another weight decay; nothing in output_dir changes."
    from lmtune.corpus import instruction_set
    from lmtune.models import tiny_model_dir
    llama = str(tiny_model_dir("llama", vocab_size=300, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, pretrain_steps=150))
    kw = dict(max_steps=2, save_steps=1, batch_size=4, seq_len=64, progress_bar=False, output_dir=tmp_path / "run")
    T.sft(llama, instruction_set(16), **kw)
    (tmp_path / "run" / "checkpoint-2" / "trainer_state.json").unlink()  # as if killed during the last save
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match=r"checkpoint-1 of a different run \(changed: weight_decay 0.0 -> 0.01\)"):
        T.sft(llama, instruction_set(16), weight_decay=0.01, **kw)
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before
