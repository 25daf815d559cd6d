"""KTO, ORPO and GRPO on a tiny Llama on the CPU: each learns (its loss falls, or its mean reward rises), resumes after a
crash from its last checkpoint, keeps its reference model where it has one, and runs the monitor. The quick examples
live in nbs/train/05_stages.ipynb; these are the slower checks.

Setup (as tests/test_stage_methods.py): a tiny Llama pretrained for 150 steps (cached by `tiny_model_dir`), explicit
learning rates that move it within a few steps, and for KTO and ORPO one batch that repeats, so the loss of the same
rows is compared over time. GRPO samples, so its rewards are compared as means over 10 or 20 steps."""
import math
import pytest
import torch

torch.set_num_threads(1)
from transformers import TrainerCallback
import lmtune.train.stages as T
from lmtune.corpus import feedback_set, instruction_set, preference_set, questions, verifiable_set, general_corpus
from lmtune.models import tiny_model, tiny_model_dir
from lmtune.train.rewards import message_text

SIZE = dict(vocab_size=300, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, pretrain_steps=150)
QUICK = dict(batch_size=8, seq_len=64, logging_steps=1, save_steps=1000, progress_bar=False)

@pytest.fixture(scope="module")
def llama(): return str(tiny_model_dir("llama", **SIZE))

def _losses(r): return [p["loss"] for p in r.losses]

def _logged(r, key): return [h[key] for h in r.log_history if key in h and "loss" in h]

def _mean(xs): return sum(xs) / len(xs)

def brief(completions, **kwargs):
    "1 for an answer of at most two words: a behaviour the rambling pretrained model learns within a few dozen steps."
    return [float(len(message_text(c).split()) <= 2) for c in completions]

# ---- each stage learns --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, lr", [("lora", 3e-3), ("full", 3e-4)])
def test_kto_learns(method, lr, llama, tmp_path):
    "The loss starts at 1 - sigmoid(0) = 0.5 (policy = reference) and falls; thumbs-up answers gain on thumbs-down ones."
    r = T.kto(llama, feedback_set(8), method=method, max_steps=10, learning_rate=lr, output_dir=tmp_path, **QUICK)
    l, margin = _losses(r), _logged(r, "rewards/margins")
    assert len(l) == 10 and abs(l[0] - 0.5) < 1e-3 and abs(margin[0]) < 1e-3, (l, margin)
    assert _mean(l[-2:]) < l[0] - 0.02 and margin[-1] > 0.1, (method, l, margin)

@pytest.mark.parametrize("method, lr", [("lora", 3e-3), ("full", 3e-4)])
def test_orpo_learns(method, lr, llama, tmp_path):
    "SFT on the chosen answers and the odds ratio in one stage, from the pretrained model (no SFT first, no reference)."
    r = T.orpo(llama, preference_set(8), method=method, max_steps=10, learning_rate=lr, output_dir=tmp_path, **QUICK)
    l, nll = _losses(r), _logged(r, "nll_loss")
    assert len(l) == 10 and _mean(l[-2:]) < l[0] - 0.2 and nll[-1] < nll[0], (method, l, nll)
    assert r.metrics["num_input_tokens_seen"] > 0

def test_grpo_learns_a_reward_function(llama, tmp_path):
    "A Python reward: the mean reward of the last 10 steps is well above that of the first 10."
    r = T.grpo(llama, verifiable_set(64), brief, max_completion_length=16, max_steps=40, learning_rate=3e-3,
               output_dir=tmp_path, **QUICK)   # seeds 1-4 gave +0.20 to +0.46
    rewards = _logged(r, "reward")
    assert len(rewards) == 40 and _mean(rewards[-10:]) > _mean(rewards[:10]) + 0.15, rewards
    assert _logged(r, "rewards/brief/mean") == rewards and r.metrics["num_input_tokens_seen"] > 0

@pytest.fixture(scope="module")
def adder(llama, tmp_path_factory):
    "The tiny Llama after SFT on sums and differences: it answers with a number, right about one time in ten."
    return T.sft(llama, instruction_set(400, tasks=("add", "subtract")), method="full", max_steps=300, learning_rate=3e-3,
                 output_dir=tmp_path_factory.mktemp("adder"), **dict(QUICK, batch_size=16, logging_steps=50))

def test_grpo_learns_the_exact_answer(adder, tmp_path):
    """The built-in verifiable reward on two questions (each 8 times in the prompts): GRPO finds their right answers, which
    the SFT model samples rarely. A wrong reward (a flipped sign, answers not passed) would leave it near the start."""
    qs = questions(2, seed=5, tasks=("add",))
    prompts = [dict(prompt=q.prompt, answer=q.answer) for q in qs] * 8
    r = T.grpo(adder, prompts, "exact_answer", method="full", max_completion_length=8, max_steps=80, learning_rate=1e-3,
               output_dir=tmp_path, **dict(QUICK, batch_size=16))
    rewards = _logged(r, "rewards/exact_answer/mean")   # seeds 1-4: from 0.12-0.33 to 0.53-0.64 (first and last 20 steps)
    assert len(rewards) == 80 and _mean(rewards[-20:]) > _mean(rewards[:20]) + 0.15, rewards

@pytest.fixture(scope="module")
def gpt2(): return str(tiny_model_dir("gpt2", **{k: v for k, v in SIZE.items() if k != "num_kv_heads"}))

def shorter(completions, **kwargs):
    "Minus the length: a reward that always differs within a group, so every step has a gradient."
    return [-float(len(message_text(c))) for c in completions]

STAGE_CALLS = {"kto": lambda m, **kw: T.kto(m, feedback_set(16), **kw), "orpo": lambda m, **kw: T.orpo(m, preference_set(16), **kw),
               "grpo": lambda m, **kw: T.grpo(m, verifiable_set(16), shorter, max_completion_length=8, beta=0.1, **kw)}
WEIGHTS = dict(lora="adapter_model", dora="adapter_model", ia3="adapter_model", prefix="adapter_model", freeze="model",
               bitfit="model", bottleneck="bottleneck_model") # the file each method's final save holds

@pytest.mark.parametrize("stage", list(STAGE_CALLS))
@pytest.mark.parametrize("method", list(WEIGHTS))
def test_every_method_runs(stage, method, llama, gpt2, tmp_path):
    "Each stage with each method (BitFit on GPT-2, which has biases): one step, a finite loss, the method's own save."
    r = STAGE_CALLS[stage](gpt2 if method == "bitfit" else llama, method=method, max_steps=1, learning_rate=1e-3,
                           output_dir=tmp_path, **dict(QUICK, **({"bottleneck_size": 8} if method == "bottleneck" else {})))
    assert len(r.losses) == 1 and math.isfinite(r.losses[0]["loss"]) and r.method == method
    assert r.weights_path.endswith("/" + WEIGHTS[method] + ".safetensors"), r.weights_path

@pytest.mark.parametrize("stage", list(STAGE_CALLS))
def test_qlora(stage, llama, tmp_path):
    if not torch.cuda.is_available(): pytest.skip("qlora needs a CUDA GPU with bitsandbytes (4-bit NF4 base)")
    r = STAGE_CALLS[stage](llama, method="qlora", max_steps=4, learning_rate=3e-3, output_dir=tmp_path, **QUICK)
    assert all(math.isfinite(l) for l in _losses(r)) and getattr(r.model.get_base_model(), "is_loaded_in_4bit", False)

# ---- the reference model --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["lora", "full"])
def test_grpo_kl_to_the_reference(method, tmp_path):
    """beta > 0: the KL to the reference is 0 at the first step (policy = reference) and grows. The model is in memory:
    TRL would load a full method's reference from the model's path, which it does not have; lmtune gives it a frozen copy."""
    tok_dir = tiny_model_dir("llama", **SIZE)
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tok_dir)
    model = tiny_model("llama", tok, seed=3, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1)
    assert not model.config._name_or_path
    r = T.grpo(model, verifiable_set(32), shorter, tokenizer=tok, method=method, beta=0.1, max_completion_length=8,
               max_steps=8, learning_rate=1e-2 if method == "lora" else 1e-3, output_dir=tmp_path, **QUICK)
    kl = _logged(r, "kl")
    assert len(kl) == 8 and kl[0] == pytest.approx(0, abs=1e-6) and max(kl[1:]) > 1e-4, kl

# ---- resume -----------------------------------------------------------------------------------------------------------

class CrashAt(TrainerCallback):
    "Stands in for a kill: raises at the end of step `at` (after the checkpoint of step 4 was saved)."
    def __init__(self, at): self.at = at
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.at: raise RuntimeError(f"crash at step {self.at}")

RUNS = {"kto": lambda llama, **kw: T.kto(llama, feedback_set(16), learning_rate=3e-3, **kw),
        "orpo": lambda llama, **kw: T.orpo(llama, preference_set(16), learning_rate=3e-3, **kw),
        "grpo": lambda llama, **kw: T.grpo(llama, verifiable_set(16), brief, max_completion_length=8, learning_rate=1e-2, **kw)}

@pytest.mark.parametrize("stage", list(RUNS))
def test_resume_after_a_crash(stage, llama, tmp_path):
    "The same call after a crash at step 6 resumes from checkpoint-4 and ends where an uninterrupted run ends."
    kw = dict(QUICK, max_steps=8, save_steps=4)
    whole = RUNS[stage](llama, output_dir=tmp_path / "whole", **kw)
    with pytest.raises(RuntimeError, match="crash at step 6"):
        RUNS[stage](llama, output_dir=tmp_path / "run", callbacks=[CrashAt(6)], **kw)
    again = RUNS[stage](llama, output_dir=tmp_path / "run", **kw)
    assert again.resumed_from.endswith("checkpoint-4") and whole.resumed_from is None
    assert [h["step"] for h in again.step_history] == list(range(1, 9))   # the steps before the crash come from the checkpoint
    assert _losses(again) == pytest.approx(_losses(whole), rel=1e-4, abs=1e-6), (_losses(again), _losses(whole))
    done = RUNS[stage](llama, output_dir=tmp_path / "run", **kw)          # finished: the saved result, no training
    assert done.resumed_from.endswith("checkpoint-8") and _losses(done) == _losses(again)
    with pytest.raises(ValueError, match="changed: beta 0.1 -> 0.2"):
        RUNS[stage](llama, output_dir=tmp_path / "run", **dict(kw, beta=0.2))

def test_grpo_resume_refuses_another_reward(llama, tmp_path):
    "The reward is part of what a GRPO run is: the same output_dir with another reward is a different run."
    kw = dict(QUICK, max_steps=2, max_completion_length=8, output_dir=tmp_path)
    T.grpo(llama, verifiable_set(16), brief, **kw)
    with pytest.raises(ValueError, match="scored by .*brief' -> '.*exact_answer'"):
        T.grpo(llama, verifiable_set(16), "exact_answer", **kw)

# ---- checks before anything loads, and the monitor ---------------------------------------------------------------

def test_bad_arguments_are_refused_before_anything_is_written(llama, tmp_path):
    out = dict(output_dir=tmp_path / "never")
    cases = [(lambda: T.kto(llama, feedback_set(8), beta=0, **out), "beta=0: kto needs a positive beta"),
             (lambda: T.orpo(llama, preference_set(8), beta=0.0, **out), "beta=0.0: orpo needs a positive beta"),
             (lambda: T.kto(llama, [dict(prompt="a", completion="b", label=True)] * 4, **out), "all 4 rows have label=True"),
             (lambda: T.kto(llama, [dict(prompt="a", completion="b", label="yes")], **out), "data: row 0: field 'label' is 'yes'"),
             (lambda: T.kto(llama, feedback_set(8), batch_size=1, **out), "batch_size=1: KTO"),
             (lambda: T.kto(llama, feedback_set(8), kl_to_base_weight=0.1, **out), "KTO already pulls toward its reference"),
             (lambda: T.grpo(llama, verifiable_set(8), "exact", **out), "Did you mean 'exact_answer'"),
             (lambda: T.grpo(llama, verifiable_set(8), lambda completions: [0.0], **out), "add **kwargs"),
             (lambda: T.grpo(llama, [dict(prompt="What is 2 plus 2?")] * 8, "exact_answer", **out), "reads the prompt column 'answer'"),
             (lambda: T.grpo(llama, verifiable_set(8), "arithmetic", **out), "scores arithmetic questions"),
             (lambda: T.grpo(llama, verifiable_set(8), brief, num_generations=3, **out), "num_generations=3: each optimizer step"),
             (lambda: T.grpo(llama, verifiable_set(1), brief, batch_size=16, **out), "prompts has 1 usable rows, but each step draws 2"),
             (lambda: T.grpo(llama, verifiable_set(8), brief, anchor_weight=1.0, **out), "GRPO already pulls toward its reference"),
             (lambda: T.grpo(llama, "builtin:verifiable?n=8&task=add", brief, **out), "prompts='builtin:verifiable?n=8&task=add'"),
             (lambda: T.grpo(llama, verifiable_set(8), brief, max_completion_length=4096, **out), "need 4352 positions")]
    for call, message in cases:
        with pytest.raises(ValueError, match=None) as e: call()
        assert message in str(e.value), (message, str(e.value))
    assert not (tmp_path / "never").exists()

def test_the_monitor_runs_during_grpo(llama, tmp_path):
    "monitor= joins the callbacks: the forgetting monitor measures the base at step 0 and the policy as it moves."
    from lmtune.train.monitor import ForgettingMonitor
    m = ForgettingMonitor(general_texts=general_corpus(16, seed=9), eval_every=5, display="none")
    T.grpo(llama, verifiable_set(32), brief, max_completion_length=8, max_steps=10, learning_rate=1e-2, monitor=m,
           output_dir=tmp_path, **QUICK)
    assert list(m.history.step) == [0, 5, 10]
    assert m.rows[0]["kl_to_base"] == 0.0 and m.rows[-1]["kl_to_base"] > 0
