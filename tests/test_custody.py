"""One custody of the output folder (issue 19): nothing is lost when two runs, a kill, a full disk or a symbolic link
meet one folder, and the inputs that used to stop a run with a bare error deep inside are named before anything is
written.

Each refused call is checked with `files(d)`, a hash of every file under a folder: a refusal leaves it byte for byte.
A kill, a second concurrent run and a full disk (a file-size limit, `ulimit -f`, stands in for it: mounting a small
tmpfs needs privileges a test machine may not grant) run in child processes. Tiny models (a 2-layer Llama, 32 wide,
300 tokens), a few steps each."""
import hashlib, json, os, shutil, signal, subprocess, sys, textwrap, time, warnings
from pathlib import Path
import pytest
import torch

torch.set_num_threads(1)
import lmtune.train.records as TR
import lmtune.train.stages as T
from lmtune.corpus import general_corpus, instruction_set, preference_set
from lmtune.models import tiny_model_dir
from lmtune.train.adapters import safetensors_problem
from lmtune.train.launch import main as lmtune_train

SIZE = dict(vocab_size=300, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1)
QUICK = dict(batch_size=4, seq_len=64, logging_steps=1, save_steps=2, progress_bar=False, learning_rate=3e-3)

def files(d)->dict:
    "Every file under `d` (relative path -> sha256), links not followed: a folder's exact contents."
    d = Path(d)
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*")) if p.is_file() and not p.is_symlink()}

@pytest.fixture(scope="module")
def llama(): return str(tiny_model_dir("llama", pretrain_steps=150, **SIZE))

@pytest.fixture(scope="module")
def lora_run(llama, tmp_path_factory):
    "A finished LoRA SFT run of 4 steps with checkpoints 2 and 4 (tests copy it before touching it)."
    out = tmp_path_factory.mktemp("lora-run") / "run"
    T.sft(llama, instruction_set(32), max_steps=4, output_dir=out, **QUICK)
    return out

@pytest.fixture
def prior(lora_run, tmp_path):
    shutil.copytree(lora_run, tmp_path / "run")
    return tmp_path / "run"

def sft_again(llama, out, **kw): return T.sft(llama, instruction_set(32), max_steps=4, output_dir=out, **dict(QUICK, **kw))

def child(tmp_path, code:str, *args, **kw)->subprocess.Popen:
    script = tmp_path / f"child{len(list(tmp_path.glob('child*.py')))}.py"
    script.write_text(textwrap.dedent(code))
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)

# ---- check everything, then write ---------------------------------------------------------------------------------------

def _run_file(tmp_path, llama, out, **keys):
    import yaml
    f = tmp_path / "run.yaml"
    f.write_text(yaml.safe_dump(dict(stage="sft", model=llama, data="builtin:instruction?n=32", output_dir=str(out), max_steps=2,
                                     **dict(QUICK, **keys))))
    return f

@pytest.mark.parametrize("change", [["--set", "learning_rate=1e-4"], ["--set", "monitor.general_texts=builtin:general?n=4", "--set", "monitor.max_kl=-1"],
                                    ["--set", "seq_len=1e11"], ["--set", "lora_r=1e12"]])
def test_a_refused_rerun_of_lmtune_train_leaves_the_folder_as_it_was(llama, tmp_path, change, capsys):
    out = tmp_path / "out"
    assert lmtune_train(["train", str(_run_file(tmp_path, llama, out))]) == 0
    before = files(out)
    assert {"lmtune_config.yaml", "lmtune_run.json", "lmtune_result.json"} <= set(before), sorted(before)
    capsys.readouterr()
    assert lmtune_train(["train", str(_run_file(tmp_path, llama, out)), *change]) == 2
    err = capsys.readouterr().err
    assert "lmtune train: error" in err and "Traceback" not in err, err
    assert files(out) == before

def test_lora_r_1e12_is_refused_before_a_file_is_written(llama, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError) as e: T.sft(llama, instruction_set(16), lora_r=10**12, max_steps=1, output_dir=out, **QUICK)
    msg = str(e.value)
    assert "lora_r=1000000000000" in msg and "With lora_r=32 it would fit" in msg and "nothing was written" in msg, msg
    assert not out.exists()

def test_a_full_disk_is_refused_before_a_file_is_written(llama, tmp_path, monkeypatch):
    monkeypatch.setattr(TR, "free_bytes", lambda path: 100_000)   # the disk holding output_dir, nearly full
    out = tmp_path / "run"
    with pytest.raises(ValueError) as e: T.sft(llama, instruction_set(16), method="full", max_steps=4, output_dir=out, **QUICK)
    msg = str(e.value)
    assert f"output_dir='{out}'" in msg and "2 checkpoint(s) of" in msg and "that disk has 0.1 MiB free" in msg and "save_total_limit" in msg, msg
    assert not out.exists()

# ---- the path policy ----------------------------------------------------------------------------------------------------

def test_a_folder_lmtune_did_not_make_is_refused(llama, tmp_path):
    etc = tmp_path / "etc"; etc.mkdir()
    (etc / "README.md").write_text("the system's"); (etc / "tokenizer.json").write_text("{}")
    before = files(etc)
    for kw in (dict(), dict(overwrite_output_dir=True)):   # asked for, but it holds a tokenizer file this run did not write
        with pytest.raises(ValueError) as e: T.sft(llama, instruction_set(16), max_steps=1, output_dir=tmp_path / "x" / ".." / "etc", **QUICK, **kw)
        assert "did not write" in str(e.value) and "tokenizer.json" in str(e.value), str(e.value)
    assert files(etc) == before
    mine = tmp_path / "mine"; mine.mkdir(); (mine / "notes.txt").write_text("kept")
    with pytest.raises(ValueError, match="overwrite_output_dir=True"): T.sft(llama, instruction_set(16), max_steps=1, output_dir=mine, **QUICK)
    r = T.sft(llama, instruction_set(16), max_steps=1, output_dir=mine, overwrite_output_dir=True, **QUICK)
    assert r.losses[-1]["step"] == 1 and (mine / "notes.txt").read_text() == "kept"

def test_a_link_out_of_the_output_folder_is_refused(llama, tmp_path):
    base = tmp_path / "base"; shutil.copytree(llama, base)
    out = tmp_path / "run"; out.mkdir(); (out / "checkpoint-1").symlink_to(base)
    before = files(base)
    with pytest.raises(ValueError) as e:
        T.sft(str(base), instruction_set(16), method="full", max_steps=2, output_dir=out, **dict(QUICK, save_steps=1))
    assert f"{out / 'checkpoint-1'}, a symbolic link to {base}" in str(e.value), str(e.value)
    assert files(base) == before

def test_an_output_folder_that_overlaps_an_input_is_refused(llama, tmp_path):
    base = tmp_path / "base"; shutil.copytree(llama, base)
    with pytest.raises(ValueError, match=f"lies inside the model \\({base}\\)"):
        T.sft(str(base), instruction_set(16), max_steps=1, output_dir=base / "runs" / "sft", **QUICK)
    out = tmp_path / "run"; out.mkdir(); data = out / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in instruction_set(16)))
    with pytest.raises(ValueError, match=f"contains the data \\({data}\\)"): T.sft(llama, str(data), max_steps=1, output_dir=out, **QUICK)
    assert sorted(p.name for p in out.iterdir()) == ["train.jsonl"] and not (base / "runs").exists()

# ---- one run at a time ----------------------------------------------------------------------------------------------------

SLOW_RUN = '''
import sys, time
from transformers import TrainerCallback
import lmtune.train.stages as T
from lmtune.corpus import instruction_set
class Slow(TrainerCallback):
    def on_step_end(self, args, state, control, **kw): time.sleep(0.4)
T.sft(sys.argv[1], instruction_set(32), max_steps=12, output_dir=sys.argv[2], callbacks=[Slow()],
      batch_size=4, seq_len=64, logging_steps=1, save_steps=2, progress_bar=False, learning_rate=3e-3)
'''

def test_a_second_run_is_refused_at_once_and_a_killed_holder_is_taken_over(llama, tmp_path):
    out = tmp_path / "run"
    p = child(tmp_path, SLOW_RUN, llama, out)
    t0 = time.time()
    while not (out / "checkpoint-2" / "trainer_state.json").exists():
        assert p.poll() is None and time.time() - t0 < 90, p.stderr.read()[-3000:] if p.poll() is not None else "no checkpoint"
        time.sleep(0.05)
    call = lambda: T.sft(llama, instruction_set(32), max_steps=12, output_dir=out, **QUICK)
    with pytest.raises(ValueError) as e: call()                    # the same run, started again while the first trains
    assert f"is in use by another run: process {p.pid} on" in str(e.value) and "holds its lock" in str(e.value), str(e.value)
    assert p.poll() is None, "the holder should still be training"
    p.send_signal(signal.SIGKILL); p.wait()
    with pytest.warns(UserWarning, match=f"took over the lock of process {p.pid} .*which is gone"):
        r = call()
    assert r.resumed_from is not None and r.losses[-1]["step"] == 12
    assert not (out / TR.HOLDER_FILE).exists()

# ---- killed during the final save; a full disk -----------------------------------------------------------------------------

KILL_IN_FINAL_SAVE = '''
import os, signal, sys
import peft.peft_model as pm
from safetensors.torch import save
real = pm.safe_save_file
def half_then_killed(tensors, path, metadata=None):
    if "checkpoint-" in str(path): return real(tensors, path, metadata=metadata)
    data = save(tensors, metadata=metadata)                     # the final adapter: half of it written, then the process dies
    with open(path, "wb") as f: f.write(data[: len(data) // 2])
    os.kill(os.getpid(), signal.SIGKILL)
pm.safe_save_file = half_then_killed
import lmtune.train.stages as T
from lmtune.corpus import instruction_set
T.sft(sys.argv[1], instruction_set(32), max_steps=4, output_dir=sys.argv[2],
      batch_size=4, seq_len=64, logging_steps=1, save_steps=2, progress_bar=False, learning_rate=3e-3)
'''

def test_killed_during_the_final_adapter_save_the_rerun_never_reports_a_truncated_file(llama, tmp_path):
    out = tmp_path / "run"
    p = child(tmp_path, KILL_IN_FINAL_SAVE, llama, out)
    _, err = p.communicate(timeout=180)
    assert p.returncode == -signal.SIGKILL, err[-3000:]
    assert (out / "checkpoint-4" / "trainer_state.json").exists() and not (out / TR.RESULT_FILE).exists()
    r = sft_again(llama, out)                                      # the same call again
    final = out / "adapter_model.safetensors"
    assert safetensors_problem(final) is None and Path(r.weights_path) == final
    assert final.read_bytes() == (out / "checkpoint-4" / "adapter_model.safetensors").read_bytes()
    assert json.loads((out / TR.RESULT_FILE).read_text())["global_step"] == 4 and r.losses[-1]["step"] == 4
    assert not list(out.glob(".lmtune-*"))                        # no staging folder or temporary file left

FULL_DISK = '''
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))   # no file over 200 kB: optimizer.pt (370 kB) cannot be written
import lmtune.train.stages as T
from lmtune.corpus import instruction_set
try: T.sft(sys.argv[1], instruction_set(32), method="full", max_steps=4, output_dir=sys.argv[2],
           batch_size=4, seq_len=64, logging_steps=1, save_steps=2, progress_bar=False, learning_rate=1e-3)
except Exception as e: print(f"{type(e).__name__}:", e)
'''

def test_a_disk_that_fills_during_a_save_is_named_and_the_saved_checkpoints_are_kept(llama, tmp_path):
    from transformers import TrainerCallback
    class StopAt3(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == 2: raise KeyboardInterrupt("stopped after checkpoint-2")
    out, kw = tmp_path / "run", dict(QUICK, method="full", max_steps=4, learning_rate=1e-3)
    with pytest.raises(KeyboardInterrupt): T.sft(llama, instruction_set(32), output_dir=out, callbacks=[StopAt3()], **kw)
    kept = files(out / "checkpoint-2")
    p = child(tmp_path, FULL_DISK, llama, out)
    so, se = p.communicate(timeout=180)
    assert p.returncode == 0 and "DiskFull:" in so, so[-3000:] + se[-3000:]
    msg = so.split("DiskFull:", 1)[1]
    assert f"no room to write {out / 'checkpoint-4' / 'optimizer.pt'}" in msg and "GiB free" in msg, msg
    assert "Fix: free space on that disk" in msg and f"the last is {out / 'checkpoint-2'}" in msg, msg
    assert files(out / "checkpoint-2") == kept and not (out / "checkpoint-4").exists()
    r = T.sft(llama, instruction_set(32), output_dir=out, **kw)     # room again: the same call resumes
    assert r.resumed_from.endswith("checkpoint-2") and r.losses[-1]["step"] == 4

# ---- clear messages for damaged or hostile files ------------------------------------------------------------------------------

def test_a_half_written_run_record_is_named(llama, prior):
    f = prior / TR.RUN_RECORD
    f.write_text(f.read_text()[:100])
    (prior / TR.RESULT_FILE).unlink(); shutil.rmtree(prior / "checkpoint-4")
    before = files(prior)
    with pytest.raises(ValueError) as e: sft_again(llama, prior)
    assert f"{f} is damaged: it is not whole JSON" in str(e.value) and "resume=False" in str(e.value), str(e.value)
    assert files(prior) == before

def test_a_half_written_result_file_is_named_and_the_final_save_completed(llama, prior):
    f = prior / TR.RESULT_FILE
    f.write_text(f.read_text()[:200])
    with pytest.warns(UserWarning, match=f"{f} is damaged: it is not whole JSON.*weights and log of checkpoint-4"):
        r = sft_again(llama, prior)
    assert r.resumed_from.endswith("checkpoint-4") and json.loads(f.read_text())["global_step"] == 4

@pytest.mark.parametrize("where", ["rng_state.pth", "optimizer.pt"])
def test_a_malicious_pickle_in_a_checkpoint_is_never_unpickled(llama, prior, where):
    (prior / TR.RESULT_FILE).unlink()
    victim = prior / ("checkpoint-2" if where == "rng_state.pth" else "checkpoint-4") / where
    torch.save({"python": None, "payload": os.system}, victim)   # unpickling would import os.system
    if where == "rng_state.pth":                                  # in the checkpoint resumed from: skipped, with a note
        shutil.rmtree(prior / "checkpoint-4")
        with pytest.warns(UserWarning, match=f"{victim} holds objects that a safe load .* refuses.*skipped it: the run resumes without"):
            r = sft_again(llama, prior)
        assert r.resumed_from.endswith("checkpoint-2") and r.losses[-1]["step"] == 4
    else:                                                         # the trainer's own state: the checkpoint before it is taken
        with pytest.warns(UserWarning, match=f"{victim} holds objects that a safe load.*checkpoint-4 cannot be resumed from"):
            r = sft_again(llama, prior)
        assert r.resumed_from.endswith("checkpoint-2")

def test_a_corrupt_trainer_state_is_said(llama, prior):
    f = prior / "checkpoint-4" / "trainer_state.json"
    f.write_text('{"global_st')
    (prior / TR.RESULT_FILE).unlink()
    with pytest.warns(UserWarning, match=f"{f} is damaged \\(JSONDecodeError.*checkpoint-4 cannot be resumed from"):
        r = sft_again(llama, prior)
    assert r.resumed_from.endswith("checkpoint-2")

@pytest.mark.parametrize("tamper, says", [(dict(peft_type="FOOBAR"), "names peft_type='FOOBAR', which PEFT does not know"),
                                          (dict(r=2), "says r=2, but the weights in adapter_model.safetensors have rank 16")])
@pytest.mark.parametrize("where", ["final", "checkpoint"])
def test_a_tampered_adapter_config_is_named(llama, prior, tamper, says, where):
    d = prior if where == "final" else prior / "checkpoint-4"
    f = d / "adapter_config.json"
    f.write_text(json.dumps({**json.loads(f.read_text()), **tamper}))
    if where == "checkpoint": (prior / TR.RESULT_FILE).unlink()
    then = "weights and log of checkpoint-4" if where == "final" else "checkpoint-4 cannot be resumed from"
    with pytest.warns(UserWarning, match=f"{f} {says}.*{then}"): r = sft_again(llama, prior)
    assert r.resumed_from.endswith("checkpoint-4" if where == "final" else "checkpoint-2")
    assert TR.adapter_config_problem(prior) is None and Path(r.weights_path) == prior / "adapter_model.safetensors"   # whole again

def test_an_sft_adapter_folder_is_the_model_of_a_dpo_stage(lora_run, tmp_path):
    with pytest.warns(UserWarning, match=f"model='{lora_run}' is a PEFT adapter folder: lmtune loads its base"):
        r = T.dpo(str(lora_run), preference_set(8), max_steps=1, output_dir=tmp_path / "dpo", **QUICK)
    assert r.losses[-1]["step"] == 1 and Path(r.weights_path).name == "adapter_model.safetensors"

def test_a_monitor_tokenizer_larger_than_the_vocabulary_is_refused(llama, tmp_path):
    from lmtune.models import build_tokenizer
    from lmtune.train.monitor import ForgettingMonitor
    mon = ForgettingMonitor(general_texts=general_corpus(8), tokenizer=build_tokenizer(vocab_size=400))
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="monitor='ForgettingMonitor': its tokenizer has 400 tokens, more than the model's vocabulary of 300"):
        T.sft(llama, instruction_set(16), max_steps=1, output_dir=out, monitor=mon, **QUICK)
    assert not out.exists()

def test_chat_rows_a_strict_template_refuses_are_named(llama, tmp_path):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(llama)
    tok.chat_template = ("{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
                         "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
                         "{{ m['role'] + ': ' + m['content'] + eos_token }}{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}")
    turn = lambda role, text: dict(role=role, content=text)
    rows = [dict(messages=[turn("user", f"Q{i}"), turn("assistant", f"A{i}")]) for i in range(6)]
    rows[4] = dict(messages=[turn("system", "Be brief."), turn("user", "Q"), turn("assistant", "A")])
    out = tmp_path / "run"
    with pytest.raises(ValueError) as e: T.sft(llama, rows, tokenizer=tok, max_steps=1, output_dir=out, **QUICK)
    assert "data row 4: the tokenizer's chat template refuses it" in str(e.value) and "['system', 'user', 'assistant']" in str(e.value), str(e.value)
    assert not out.exists()

def test_a_pickle_only_model_folder_says_why_pickles_are_unsafe(llama, tmp_path):
    from transformers import AutoModelForCausalLM
    d = tmp_path / "pickled"
    m = AutoModelForCausalLM.from_pretrained(llama); m.config.save_pretrained(d)
    torch.save(m.state_dict(), d / "pytorch_model.bin")           # no safetensors, and no tokenizer either
    with pytest.raises(ValueError) as e: T.sft(str(d), instruction_set(8), max_steps=1, output_dir=tmp_path / "run", **QUICK)
    msg = str(e.value)
    assert "pytorch_model.bin holds pickled weights" in msg and "Unpickling a file can run any code in it" in msg, msg
    assert not (tmp_path / "run").exists()
