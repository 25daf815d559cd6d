"""Bad inputs and failures during training (issue 9): one test per defect and per rule of "the standard".

Each test asserts that the message names the argument or the file, and that every file that existed before the
call still exists, byte for byte (`files(d)` hashes a folder). Tiny models (a 2-layer Llama, 32 wide, 300 tokens,
cached by `tiny_model_dir`), a few steps each, one process: a training call costs well under a second here."""
import hashlib, json, math, shutil, warnings
from pathlib import Path
import pytest
import torch

torch.set_num_threads(1)
import lmtune.settings as S
import lmtune.train.guard as TG
import lmtune.train.recipe as TC
import lmtune.train.records as TR
import lmtune.train.stages as T
from lmtune.corpus import domain_corpus, general_corpus, instruction_set, preference_set
from lmtune.data import load_data
from lmtune.models import tiny_model_dir

SIZE = dict(vocab_size=300, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1)
QUICK = dict(batch_size=4, seq_len=64, logging_steps=1, save_steps=2, progress_bar=False, learning_rate=3e-3)

def files(d)->dict:
    "Every file under `d` (relative path -> sha256): a folder's exact contents."
    d = Path(d)
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*")) if p.is_file()}

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
    "A copy of `lora_run` to change."
    shutil.copytree(lora_run, tmp_path / "run")
    return tmp_path / "run"

# ---- defect 1: never write into a folder with weights this run did not write ------------------------------------------

def test_output_dir_is_the_models_own_folder(llama, tmp_path):
    base = tmp_path / "base"; shutil.copytree(llama, base)
    before = files(base)
    with pytest.raises(ValueError) as e:
        T.sft(str(base), instruction_set(16), method="full", max_steps=1, output_dir=base, **dict(QUICK, save_steps=1))
    msg = str(e.value)
    assert "output_dir=" in msg and str(base) in msg and "model.safetensors" in msg, msg
    assert f"output_dir='{base}-sft'" in msg, msg  # where to write instead
    assert files(base) == before

def test_output_dir_with_weights_of_another_model(llama, tmp_path):
    other = tmp_path / "other-model"; shutil.copytree(llama, other)
    before = files(other)
    with pytest.raises(ValueError, match="did not write") as e:
        T.sft(llama, instruction_set(16), max_steps=1, output_dir=other, **QUICK)
    assert str(other) in str(e.value)
    assert files(other) == before

# ---- defect 2: validate before touching the disk; keep the previous run until the new one has a checkpoint -------------

@pytest.mark.parametrize("bad, names", [(dict(optim="adamw_tourch"), "optim='adamw_tourch'"),
                                        (dict(early_stopping=1), "early_stopping=1"),
                                        (dict(data=[{"prompt": "only a prompt"}]), "row 0"),
                                        (dict(trainable_layers=5, method="freeze"), "trainable_layers=5"),
                                        (dict(use_liger_kernel=True), "use_liger_kernel"),
                                        (dict(attn_implementation="flash_attention_2"), "needs the flash_attn package")])
def test_start_over_refused_before_anything_is_deleted(llama, prior, bad, names):
    import importlib.util
    if "use_liger_kernel" in bad and importlib.util.find_spec("liger_kernel"): pytest.skip("liger_kernel is installed here")
    if "attn_implementation" in bad and (importlib.util.find_spec("flash_attn") or importlib.util.find_spec("kernels")):
        pytest.skip("flash_attn or kernels is installed here")
    before = files(prior)
    kw = dict(dict(QUICK, max_steps=4, resume=False, output_dir=prior), **bad)
    data = kw.pop("data", instruction_set(32))
    with pytest.raises(ValueError) as e: T.sft(llama, data, **kw)
    assert names in str(e.value), str(e.value)
    assert files(prior) == before

class Boom(Exception): pass

def test_start_over_that_fails_before_its_first_checkpoint_keeps_the_previous_run(llama, prior):
    from transformers import TrainerCallback
    class FailAtStep1(TrainerCallback):
        def on_step_end(self, args, state, control, **kw): raise Boom("killed at step 1")
    before = files(prior)
    with pytest.raises(Boom):
        T.sft(llama, instruction_set(40), max_steps=4, resume=False, output_dir=prior, callbacks=[FailAtStep1()], **QUICK)
    assert files(prior) == before

def test_start_over_replaces_the_previous_run_once_it_has_a_checkpoint(llama, prior):
    r = T.sft(llama, instruction_set(40), max_steps=2, resume=False, output_dir=prior, **QUICK)
    assert r.resumed_from is None and r.losses[-1]["step"] == 2
    assert sorted(p.name for p in prior.glob("checkpoint-*")) == ["checkpoint-2"]
    assert not any("previous" in p.name for p in prior.iterdir()), list(prior.iterdir())

def test_a_start_over_killed_before_its_first_checkpoint_gives_way_to_the_earlier_run(llama, lora_run, prior):
    before = files(prior)
    assert TR.move_previous_run_aside(prior)  # what resume=False does, then a kill before the new run's first checkpoint:
    (prior / TR.RUN_RECORD).write_text("{}"); (prior / "checkpoint-1").mkdir()  # its record, and a save it did not finish
    r = T.sft(llama, instruction_set(32), max_steps=4, output_dir=prior, **QUICK)  # the earlier run's call again
    assert files(prior) == before and r.resumed_from.endswith("checkpoint-4")  # finished: its saved result, nothing trained

# ---- defect 3: sequence length past the position table ----------------------------------------------------------------

@pytest.mark.parametrize("arch, field", [("gpt2", "n_positions"), ("llama", "max_position_embeddings")])
def test_seq_len_past_the_position_table(arch, field, tmp_path):
    kw = {k: v for k, v in SIZE.items() if not (arch == "gpt2" and k == "num_kv_heads")}
    d = str(tiny_model_dir(arch, max_position_embeddings=32, **kw))
    out = tmp_path / "run"
    with pytest.raises(ValueError) as e: T.sft(d, instruction_set(16), max_steps=1, output_dir=out, **QUICK)
    msg = str(e.value)
    assert "seq_len=64" in msg and f"{field}=32" in msg and "seq_len <= 32" in msg, msg
    assert not out.exists()
    cfg = dict(model_type=arch, vocab_size=300, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, **{field: 32})
    with pytest.raises(ValueError, match=f"{field}=32"): T.pretrain(cfg, general_corpus(20), max_steps=1, output_dir=out, **QUICK)
    assert not out.exists()

# ---- defect 4: divergence on every step --------------------------------------------------------------------------------

def test_collapse_to_the_uniform_distribution(llama, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(TG.TrainingDiverged) as e:
        T.sft(llama, instruction_set(64), method="full", max_steps=12, output_dir=out, **dict(QUICK, learning_rate=1e6, save_steps=1))
    msg = str(e.value)
    assert "step 2" in msg and f"ln(300) = {math.log(300):.3f}" in msg and "learning_rate" in msg and "warmup" in msg, msg
    # the update of step 1 killed the model, so its checkpoint is set aside and a resume cannot pick it up
    assert TR.last_checkpoint(out) is None and (out / "suspect-checkpoint-1").is_dir() and "suspect-checkpoint-1" in msg

def test_spike_on_a_step_that_is_not_logged(llama, tmp_path):
    from transformers import TrainerCallback
    class Spike(TrainerCallback): # blow up the output layer after step 12: the loss of step 13 is far above its median
        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step == 12:
                with torch.no_grad(): model.get_output_embeddings().weight.mul_(100)
    out = tmp_path / "run"
    with pytest.raises(TG.TrainingDiverged) as e:
        T.sft(llama, instruction_set(120), method="full", max_steps=20, output_dir=out, callbacks=[Spike()],
              **dict(QUICK, logging_steps=10, save_steps=4, learning_rate=1e-3))
    msg = str(e.value)
    assert "loss spike at step 13" in msg and "median" in msg and "checkpoint-8" in msg, msg
    assert TR.last_checkpoint(out).endswith("checkpoint-8") and (out / "suspect-checkpoint-12").is_dir()

def test_nan_on_a_step_that_is_not_logged(llama, tmp_path):
    from transformers import TrainerCallback
    class Poison(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step == 5:
                with torch.no_grad(): next(p for p in model.parameters() if p.requires_grad).fill_(float("nan"))
    out = tmp_path / "run"
    with pytest.raises(TG.TrainingDiverged) as e:
        T.sft(llama, instruction_set(64), method="full", max_steps=10, output_dir=out, callbacks=[Poison()],
              **dict(QUICK, logging_steps=100, save_steps=3))
    assert "loss=nan at step 6" in str(e.value) and "checkpoint-3" in str(e.value), str(e.value)
    assert TR.last_checkpoint(out).endswith("checkpoint-3") and not (out / "checkpoint-6").exists()

def test_every_step_is_recorded(llama, lora_run):
    r = T.sft(llama, instruction_set(32), max_steps=4, output_dir=lora_run, **QUICK)  # the finished run, as saved
    hist = r.step_history
    assert [h["step"] for h in hist] == [1, 2, 3, 4]
    assert all(math.isfinite(h["loss"]) and h["grad_norm"] > 0 for h in hist), hist
    logged = {h["step"]: h for h in r.log_history if "grad_norm" in h}
    for h in hist: # the trainer's own log (logging_steps=1) shows the same values
        assert h["grad_norm"] == pytest.approx(logged[h["step"]]["grad_norm"], rel=1e-5)
        assert h["loss"] == pytest.approx(logged[h["step"]]["loss"], rel=1e-5)

def test_history_survives_a_resume(llama, prior):
    for p in ["checkpoint-4", TR.RESULT_FILE]: shutil.rmtree(prior / p) if (prior / p).is_dir() else (prior / p).unlink()
    r = T.sft(llama, instruction_set(32), max_steps=4, output_dir=prior, **QUICK)
    assert r.resumed_from.endswith("checkpoint-2") and [h["step"] for h in r.step_history] == [1, 2, 3, 4]

# ---- defect 5: empty step budgets --------------------------------------------------------------------------------------

STAGE_CALLS = dict(pretrain=lambda m, **kw: T.pretrain(dict(model_type="llama", **T_TINY), general_corpus(20), **kw),
                   continue_pretraining=lambda m, **kw: T.continue_pretraining(m, domain_corpus(10), **kw),
                   sft=lambda m, **kw: T.sft(m, instruction_set(16), **kw),
                   dpo=lambda m, **kw: T.dpo(m, preference_set(8), **kw))
T_TINY = dict(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=64)

@pytest.mark.parametrize("stage", list(STAGE_CALLS))
@pytest.mark.parametrize("budget", [dict(max_steps=0), dict(num_epochs=0)])
def test_empty_step_budget(llama, tmp_path, stage, budget):
    out = tmp_path / "run"
    with pytest.raises(ValueError) as e: STAGE_CALLS[stage](llama, output_dir=out, **dict(QUICK, **budget))
    (k, v), = budget.items()
    assert f"{k}={v}" in str(e.value), str(e.value)
    assert not out.exists()

# ---- defect 6: resume compares the whole run; damaged checkpoints ---------------------------------------------------

@pytest.mark.parametrize("change", [dict(optim="sgd"), dict(completion_only_loss=False), dict(weight_decay=0.1)])
def test_resume_with_a_changed_setting_is_refused(llama, prior, change):
    shutil.rmtree(prior / "checkpoint-4"); (prior / TR.RESULT_FILE).unlink()
    before = files(prior)
    with pytest.raises(ValueError) as e: T.sft(llama, instruction_set(32), max_steps=4, output_dir=prior, **dict(QUICK, **change))
    (k, v), = change.items()
    assert f"changed: {k} {getattr(S.RunSettings(), k)!r} -> {v!r}" in str(e.value), str(e.value)
    assert files(prior) == before

@pytest.mark.parametrize("damaged", ["adapter_model.safetensors", "optimizer.pt"])
def test_damaged_checkpoint_falls_back_to_the_newest_complete_one(llama, lora_run, prior, damaged):
    f = prior / "checkpoint-4" / damaged
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])  # cut short, as a full disk or a kill during the copy leaves it
    (prior / TR.RESULT_FILE).unlink()
    with pytest.warns(UserWarning, match=f"{f}.*damaged"):
        r = T.sft(llama, instruction_set(32), max_steps=4, output_dir=prior, **QUICK)
    assert r.resumed_from.endswith("checkpoint-2")
    ref = json.loads((lora_run / TR.RESULT_FILE).read_text())["log_history"]
    assert r.final_loss == pytest.approx([h["loss"] for h in ref if "loss" in h][-1], rel=1e-5)  # the same run, steps 3-4 again
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])  # the resumed run saved checkpoint-4 whole again: damage it again
    with pytest.raises(ValueError, match=str(f)):  # named explicitly, a damaged checkpoint is an error
        T.sft(llama, instruction_set(32), max_steps=4, output_dir=prior, resume=str(prior / "checkpoint-4"), **QUICK)

def test_damaged_full_weights_checkpoint(llama, tmp_path):
    out = tmp_path / "run"
    T.sft(llama, instruction_set(32), method="full", max_steps=4, output_dir=out, **dict(QUICK, learning_rate=1e-3))
    f = out / "checkpoint-4" / "model.safetensors"
    f.write_bytes(f.read_bytes()[:1000])
    problem = TR.checkpoint_problem(out / "checkpoint-4")
    assert str(f) in problem and "damaged" in problem, problem
    with pytest.warns(UserWarning, match="damaged"): assert TR.last_checkpoint(out).endswith("checkpoint-2")

# ---- defect 7: data that is not UTF-8; on_bad_rows in every trainer ---------------------------------------------------

def test_cp1252_csv_names_file_and_line(llama, tmp_path):
    p = tmp_path / "export.csv"
    p.write_bytes("prompt,response\nWhat is 2+2?,4\nCaf\u00e9 or tea?,Tea\n".encode("cp1252"))
    for call in (lambda: load_data(p), lambda: T.sft(llama, str(p), max_steps=1, output_dir=tmp_path / "run", **QUICK)):
        with pytest.raises(ValueError) as e: call()
        msg = str(e.value)
        assert f"{p} line 3" in msg and "UTF-8" in msg and "encoding=" in msg, msg
    assert not (tmp_path / "run").exists()
    assert load_data(p, encoding="cp1252")["prompt"][1] == "Caf\u00e9 or tea?\n"

BAD_ROW = {"prompt": "a prompt without an answer", "response": ""}

@pytest.mark.parametrize("stage", list(STAGE_CALLS))
def test_on_bad_rows_is_accepted_by_every_trainer(llama, tmp_path, stage):
    data = dict(pretrain=general_corpus(20) + [""], continue_pretraining=domain_corpus(10) + [""],
                sft=instruction_set(16) + [BAD_ROW], dpo=preference_set(8) + [dict(prompt="p", chosen="same", rejected="same")])[stage]
    call = dict(pretrain=lambda **kw: T.pretrain(dict(model_type="llama", **T_TINY), data, **kw),
                continue_pretraining=lambda **kw: T.continue_pretraining(llama, data, **kw),
                sft=lambda **kw: T.sft(llama, data, **kw), dpo=lambda **kw: T.dpo(llama, data, **kw))[stage]
    with pytest.raises(ValueError, match="on_bad_rows='skip'"): call(max_steps=1, output_dir=tmp_path / "a", **QUICK)
    assert not (tmp_path / "a").exists()
    with pytest.warns(UserWarning, match="skipped 1 of"):
        r = call(max_steps=1, output_dir=tmp_path / "b", on_bad_rows="skip", **QUICK)
    assert r.losses[-1]["step"] == 1
    with pytest.raises(ValueError, match="Did you mean 'skip'"): call(max_steps=1, output_dir=tmp_path / "c", on_bad_rows="skp", **QUICK)
    assert not (tmp_path / "c").exists()

# ---- defect 8: rows longer than seq_len ---------------------------------------------------------------------------------

LONG = {"prompt": " ".join(["word"] * 80) + " what now?", "response": "nothing"}  # the prompt alone fills seq_len
LONG_ANSWER = {"prompt": "Say it:", "response": " ".join(["word"] * 80)}  # cut, but part of the response is left

def test_rows_past_seq_len_are_counted(llama, tmp_path):
    with pytest.warns(UserWarning, match=r"5 of 21 training rows are longer than seq_len=64: 2 truncated \(cut at seq_len\), 3 dropped"):
        r = T.sft(llama, instruction_set(16) + [LONG] * 3 + [LONG_ANSWER] * 2, max_steps=1, output_dir=tmp_path / "run", **QUICK)
    assert (r.metrics["rows_truncated"], r.metrics["rows_dropped"]) == (2, 3)

def test_nothing_left_after_truncation_is_refused(llama, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=r"seq_len=64.*all 4 training rows.*none has a response token") as e:
        T.sft(llama, [LONG] * 4, max_steps=1, output_dir=out, **QUICK)
    assert "num_samples" not in str(e.value)
    long_pref = dict(prompt=LONG["prompt"] * 2, chosen="yes", rejected="no")
    with pytest.raises(ValueError, match=r"seq_len=64.*all 3 training rows"):
        T.dpo(llama, [long_pref] * 3, max_steps=1, output_dir=out, **QUICK)

# ---- the standard: every argument checked before a model loads or a file is written ------------------------------------

@pytest.mark.parametrize("bad, names", [(dict(callbacks="EarlyStopping"), "callbacks='EarlyStopping'"),
                                        (dict(callbacks=[object()]), "callbacks"),
                                        (dict(monitor=42), "monitor=42"),
                                        (dict(tokenizer=3), "tokenizer=3"),
                                        (dict(eval_data=5), "eval_data"),
                                        (dict(replay_fraction=0.2), "replay_data"),
                                        (dict(lora_dropout=1.5), "lora_dropout=1.5"),
                                        (dict(max_grad_norm=-1), "max_grad_norm=-1"),
                                        (dict(lr_scheduler_type="cosin"), "'cosine'"),
                                        (dict(batch_size="8"), "batch_size='8'")])
def test_trainer_arguments_are_checked_first(llama, tmp_path, bad, names):
    out = tmp_path / "run"
    with pytest.raises(ValueError) as e: T.sft(llama, instruction_set(16), max_steps=1, output_dir=out, **dict(QUICK, **bad))
    assert names in str(e.value), str(e.value)
    assert not out.exists()

def test_data_functions_check_their_arguments():
    from lmtune import data as D
    ds = load_data(instruction_set(8))
    for call, names in [(lambda: D.deduplicate(ds, num_perm=0), "num_perm=0"), (lambda: D.deduplicate(ds, shingle_size=0), "shingle_size=0"),
                        (lambda: D.deduplicate(ds, near="yes"), "near='yes'"),
                        (lambda: D.pack(load_data(general_corpus(5)), None, 8, batch_size=0), "batch_size=0"),
                        (lambda: D.token_stats(ds, None, batch_size=-1), "batch_size=-1"),
                        (lambda: D.replay_sample(ds, n_task=-1), "n_task=-1"), (lambda: D.mix_replay(ds, ds, fraction=2), "fraction=2"),
                        (lambda: D.train_test_split(ds, seed="a"), "seed='a'"), (lambda: D.load_data(ds, return_report="no"), "return_report='no'"),
                        (lambda: D.load_data(instruction_set(2), encoding="utf-9"), "encoding='utf-9'"),
                        (lambda: D.lsh_bands(1.5), "threshold=1.5")]:
        with pytest.raises(ValueError) as e: call()
        assert names in str(e.value), (names, str(e.value))

# ---- the standard: adapters -----------------------------------------------------------------------------------------------

def _lora_dir(tmp_path, hidden, name, r=4, seed=0):
    from peft import LoraConfig, get_peft_model
    from lmtune.models import tiny_model
    torch.manual_seed(seed)
    m = tiny_model("llama", seed=seed, **dict(SIZE, hidden_size=hidden))
    m.name_or_path = m.config._name_or_path = f"tiny-llama-{hidden}"  # what from_pretrained records, and PEFT saves as the base
    pm = get_peft_model(m, LoraConfig(r=r, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    pm.save_pretrained(tmp_path / name)
    return tmp_path / name

def test_adapter_of_another_base_is_refused_and_the_model_is_untouched(tmp_path):
    from lmtune.train.adapters import load_adapter
    from lmtune.models import tiny_model
    path = _lora_dir(tmp_path, 64, "wide")
    base = tiny_model("llama", **SIZE); base.name_or_path = base.config._name_or_path = "tiny-llama-32"
    names = [n for n, _ in base.named_modules()]
    with pytest.raises(ValueError) as e: load_adapter(base, path)
    msg = str(e.value)
    assert str(path) in msg and "tiny-llama-64" in msg and "tiny-llama-32" in msg and "(4, 64)" in msg and "(4, 32)" in msg, msg
    assert [n for n, _ in base.named_modules()] == names and not hasattr(base, "peft_config")

def test_failed_combination_leaves_the_model_as_it_was(tmp_path):
    from lmtune.train.adapters import load_adapter, combine_adapters
    from lmtune.models import tiny_model
    base = tiny_model("llama", **SIZE)
    m = load_adapter(base, _lora_dir(tmp_path, 32, "a", seed=1), "a")
    m = load_adapter(m, _lora_dir(tmp_path, 32, "b", seed=2), "b", activate=False)
    ids = torch.arange(12).reshape(2, 6)
    with torch.no_grad(): before = m(ids).logits
    state = (sorted(m.peft_config), m.active_adapter, sorted(n for n, _ in m.named_parameters()))
    with pytest.raises(ValueError) as e: combine_adapters(m, ["a", "b"], combination_type="svd", svd_rank=1000, name="ab")
    assert "svd_rank=1000" in str(e.value), str(e.value)
    assert (sorted(m.peft_config), m.active_adapter, sorted(n for n, _ in m.named_parameters())) == state
    with torch.no_grad(): assert torch.equal(m(ids).logits, before)

def test_pickled_weights_are_refused(llama, tmp_path):
    from lmtune.train.adapters import load_adapter
    from transformers import AutoModelForCausalLM, AutoTokenizer
    d = tmp_path / "pickled"
    m = AutoModelForCausalLM.from_pretrained(llama); m.save_pretrained(d)
    torch.save(m.state_dict(), d / "pytorch_model.bin")  # weights as a pickle, as older tools saved them
    AutoTokenizer.from_pretrained(llama).save_pretrained(d)
    for f in d.glob("*.safetensors"): f.unlink()
    before = files(d)
    with pytest.raises(ValueError) as e: T.sft(str(d), instruction_set(8), max_steps=1, output_dir=tmp_path / "run", **QUICK)
    msg = str(e.value)
    assert "pytorch_model.bin" in msg and "safetensors" in msg and "save_pretrained" in msg, msg
    assert files(d) == before and not (tmp_path / "run").exists()
    a = _lora_dir(tmp_path, 32, "adapter")
    from safetensors.torch import load_file
    torch.save(load_file(str(a / "adapter_model.safetensors")), a / "adapter_model.bin"); (a / "adapter_model.safetensors").unlink()
    with pytest.raises(ValueError) as e: load_adapter(AutoModelForCausalLM.from_pretrained(llama), a)
    assert "adapter_model.bin" in str(e.value) and "save_file" in str(e.value), str(e.value)

# ---- the standard: an OOM never costs more than the steps since the last checkpoint -----------------------------------

def test_out_of_memory_keeps_the_checkpoints_and_resumes(llama, lora_run, tmp_path):
    from transformers import TrainerCallback
    class OOMAtStep3(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == 2: raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    out = tmp_path / "run"
    with pytest.raises(TC.TrainingOOM) as e:
        T.sft(llama, instruction_set(32), max_steps=4, output_dir=out, callbacks=[OOMAtStep3()], **QUICK)
    assert "checkpoint-2" in str(e.value), str(e.value)
    r = T.sft(llama, instruction_set(32), max_steps=4, output_dir=out, **QUICK)
    ref = json.loads((lora_run / TR.RESULT_FILE).read_text())["log_history"]
    assert r.resumed_from.endswith("checkpoint-2") and r.final_loss == pytest.approx([h["loss"] for h in ref if "loss" in h][-1], rel=1e-5)

def test_adapter_functions_check_their_arguments(tmp_path):
    from lmtune.train.adapters import (load_adapter, combine_adapters, merge_adapter, save_adapter, swap_adapter,
                                       adapter_dir)
    from lmtune.models import tiny_model
    path = _lora_dir(tmp_path, 32, "a", seed=1)
    m = load_adapter(tiny_model("llama", **SIZE), path, "a")
    for call, names in [(lambda: load_adapter(tiny_model("llama", **SIZE), path, name=3), "name=3"),
                        (lambda: load_adapter(m, path, "b", activate="no"), "activate='no'"),
                        (lambda: load_adapter("a model", path), "model='str'"),
                        (lambda: combine_adapters(m, ["a"], density=1.5, combination_type="ties"), "density=1.5"),
                        (lambda: combine_adapters(m, ["a"], weights=[True]), "weights=[True]"),
                        (lambda: merge_adapter(m, safe_merge="yes"), "safe_merge='yes'"),
                        (lambda: save_adapter(m, 42), "path=42"), (lambda: swap_adapter(m, 7), "name=7"),
                        (lambda: adapter_dir(None), "path=None")]:
        with pytest.raises(ValueError) as e: call()
        assert names in str(e.value), (names, str(e.value))
    assert list(m.peft_config) == ["a"]  # none of the refused calls changed the model

def test_resume_after_a_divergence_with_a_lower_learning_rate(llama, tmp_path):
    "A divergence costs only the steps since the last good checkpoint: the same call with a lower learning rate resumes from it."
    from transformers import TrainerCallback
    class Poison(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step == 5:
                with torch.no_grad(): next(p for p in model.parameters() if p.requires_grad).fill_(float("nan"))
    out, kw = tmp_path / "run", dict(QUICK, logging_steps=1, save_steps=3, learning_rate=1e-3)
    with pytest.raises(TG.TrainingDiverged) as e:
        T.sft(llama, instruction_set(64), method="full", max_steps=10, output_dir=out, callbacks=[Poison()], **kw)
    assert "lmtune resumes from" in str(e.value) and "checkpoint-3" in str(e.value), str(e.value)
    with pytest.raises(ValueError, match="weight_decay"):   # only the recovery settings may change
        T.sft(llama, instruction_set(64), method="full", max_steps=10, output_dir=out, **dict(kw, learning_rate=1e-4, weight_decay=0.1))
    r = T.sft(llama, instruction_set(64), method="full", max_steps=10, output_dir=out, **dict(kw, learning_rate=1e-4))
    assert r.resumed_from.endswith("checkpoint-3") and r.losses[-1]["step"] == 10 and all(math.isfinite(p["loss"]) for p in r.losses)
    lr = {h["step"]: h["learning_rate"] for h in r.log_history if "learning_rate" in h}
    ref = T.sft(llama, instruction_set(64), method="full", max_steps=10, output_dir=tmp_path / "ref", **kw)   # the schedule at 1e-3
    ref_lr = {h["step"]: h["learning_rate"] for h in ref.log_history if "learning_rate" in h}
    for step in range(4, 11): assert lr[step] == pytest.approx(ref_lr[step] / 10, rel=1e-6), (step, lr[step], ref_lr[step])  # the new rate applies
