"""The experiment of nbs/tutorials/forgetting.ipynb: full fine-tuning against LoRA at several ranks and learning rates,
compared at comparable task gain, with replay data and lower learning rates, on the tiny model.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/forgetting_experiment.py

1. pretrain the tiny Llama-style model (`lmtune.models.make_tiny_model_dir`, random weights) on the built-in general
   corpus with `lmtune.train.stages.pretrain`;
2. fine-tune it on the narrow task (the domain pharmacopoeia questions, `instruction_set(tasks=DOMAIN_TASKS)`) with
   `lmtune.train.stages.sft`, once per arm, with a `ForgettingMonitor` measuring every `EVAL_EVERY` steps;
3. write every monitor history and the comparison at matched task gain to benchmarks/results/forgetting_experiment.json
   (the tutorial draws its figures from it) and a readable summary to benchmarks/results/forgetting_experiment.txt.

`--quick` runs a 2-arm smoke version into a temporary folder (for checking the script, not for results).
`--mitigations` runs the levers against forgetting instead: the loss terms of `lmtune.train.mitigate`
(`kl_to_base_weight`, `anchor_weight`, `ewc_weight`), replay, a lower learning rate and LoRA at two ranks, each against
the same full fine-tune at lr 1e-3, 3 seeds each, into forgetting_mitigations.json/.txt; the summary compares them at
the end and at equal task gain (the KL to the base where exact match first reaches `EQUAL_GAIN`).
"""
from __future__ import annotations
import argparse, datetime, json, math, os, platform, shlex, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRETRAIN = dict(max_steps=300, batch_size=16, seq_len=64, learning_rate=3e-3, warmup_ratio=0.05, logging_steps=20) # as `lmtune demo`
SFT = dict(max_steps=150, batch_size=16, seq_len=64, logging_steps=5, warmup_ratio=0.0, lr_scheduler_type="cosine")
EVAL_EVERY = 15
N_TRAIN = 2000 # domain instruction pairs to train on (seed 0)
HELD_OUT = dict(n_general=64, n_mc=40, n_task=43, seed=1000) # 43 task rows: 3 few-shot examples + 40 scored
REPLAY = dict(n=2000, seed=7, fraction=0.25) # general text mixed into the SFT rows (a different seed from the held-out text)
TARGETS = (0.25, 0.5, 0.75) # exact-match levels at which forgetting is compared (EQUAL_GAIN is one of them)

def arms()->list[dict]:
    "Every fine-tuning run: (method, rank, learning rate, replay, seed)."
    a = [dict(method="full", lr=lr) for lr in (1e-4, 3e-4, 1e-3)]
    a += [dict(method="lora", lora_r=r, lr=lr) for r in (4, 16, 64) for lr in (5e-4, 2e-3)]
    a += [dict(method="full", lr=3e-4, replay=REPLAY["fraction"]), dict(method="lora", lora_r=16, lr=2e-3, replay=REPLAY["fraction"])]
    a += [dict(method="full", lr=3e-4, seed=1), dict(method="lora", lora_r=16, lr=2e-3, seed=1)] # run-to-run noise
    for x in a:
        x.setdefault("replay", 0.0); x.setdefault("seed", 0)
        x["name"] = (f"full lr={x['lr']:g}" if x["method"] == "full" else f"LoRA r={x['lora_r']} lr={x['lr']:g}") \
                    + (f" +replay {x['replay']:g}" if x["replay"] else "") + (f" seed={x['seed']}" if x["seed"] else "")
    return a

MITIGATION_BASE = dict(method="full", lr=1e-3) # the arm that forgot most above (KL 1.29 at the end)
MITIGATION_WEIGHTS = dict(kl_to_base_weight=1.0, anchor_weight=0.01, ewc_weight=0.01)
OTHER_LEVERS = {"replay 0.25": dict(replay=REPLAY["fraction"]), "lr 3e-4": dict(lr=3e-4), # the seed's other levers, same base
                "LoRA r=16 lr 2e-3": dict(method="lora", lora_r=16, lr=2e-3), "LoRA r=64 lr 5e-4": dict(method="lora", lora_r=64, lr=5e-4)}
SEEDS = (0, 1, 2)
EQUAL_GAIN = 0.75 # the exact match at which the arms are compared ("equal task gain"): the highest level most arms reach

def mitigation_arms()->list[dict]:
    "The full fine-tune at lr 1e-3 without and with each loss term, replay, a lower learning rate and LoRA; 3 seeds each."
    a = [dict(MITIGATION_BASE, seed=s, mitigation={}, group="none") for s in SEEDS]
    a += [dict(MITIGATION_BASE, seed=s, mitigation={k: w}, group=f"{k}={w:g}") for k, w in MITIGATION_WEIGHTS.items() for s in SEEDS]
    a += [dict(MITIGATION_BASE, seed=s, mitigation={}, group=g, **kw) for g, kw in OTHER_LEVERS.items() for s in SEEDS]
    for x in a:
        x.setdefault("replay", 0.0)
        x["name"] = x["group"] + f" seed={x['seed']}"
    return a

def first_crossing(history:list[dict], target:float, key:str="exact_match")->dict|None:
    "Forgetting where `key` first reaches `target`, linearly interpolated between the two evaluations around it (None: never)."
    for a, b in zip(history, history[1:]):
        if a[key] < target <= b[key]:
            w = (target - a[key]) / (b[key] - a[key])
            return {k: a[k] + w * (b[k] - a[k]) for k in ("step", "kl_to_base", "general_loss_delta", "mc_accuracy_delta")}
    return None

def pretrain_base(work:Path, quick:bool)->tuple:
    from lmtune.corpus import general_corpus
    from lmtune.models import make_tiny_model_dir
    from lmtune.train.stages import pretrain
    init = make_tiny_model_dir(work / "init", arch="llama", seed=0)
    kw = dict(PRETRAIN, max_steps=20) if quick else PRETRAIN
    pre = pretrain(str(init), general_corpus(4000, seed=0), output_dir=str(work / "pretrain"), save_steps=kw["max_steps"],
                   seed=0, progress_bar=False, **kw)
    return Path(pre.output_dir), pre

def run_arm(arm:dict, base_dir:Path, work:Path, quick:bool)->dict:
    from lmtune.corpus import instruction_set, general_corpus, DOMAIN_TASKS
    from lmtune.train.monitor import ForgettingMonitor, builtin_inputs
    from lmtune.train.stages import sft
    inputs = builtin_inputs(**{**HELD_OUT, **(dict(n_general=16, n_mc=12, n_task=8) if quick else {})}, tasks=DOMAIN_TASKS)
    monitor = ForgettingMonitor(**inputs, eval_every=5 if quick else EVAL_EVERY, fewshot=3, max_new_tokens=8, batch_size=32,
                                save_at_eval=False, display="none")
    kw = dict(SFT, max_steps=10) if quick else dict(SFT)
    extra = dict(lora_r=arm["lora_r"]) if arm["method"] == "lora" else {}
    extra.update(arm.get("mitigation", {}))
    if arm["replay"]: extra.update(replay_data=general_corpus(REPLAY["n"], seed=REPLAY["seed"]), replay_fraction=arm["replay"])
    t = time.perf_counter()
    run = sft(str(base_dir), instruction_set(N_TRAIN, seed=0, tasks=DOMAIN_TASKS), method=arm["method"], learning_rate=arm["lr"],
              seed=arm["seed"], output_dir=str(work / arm["name"].replace(" ", "_")), save_steps=10**6, resume=False,
              progress_bar=False, callbacks=[monitor], **kw, **extra)
    wall = time.perf_counter() - t
    s = monitor.summary()
    keep = ("step", "general_loss", "general_loss_delta", "kl_to_base", "mc_accuracy", "mc_accuracy_delta", "mc_flips", "task_loss",
            "exact_match", "token_f1", "rouge_l", "bleu", "chrf", "train_loss", "monitor_seconds")
    hist = [{k: r.get(k) for k in keep} for r in s["history"]]
    return dict(arm, history=hist, prompting_baseline=s["prompting_baseline"], samples=s["samples"], notes=s["notes"],
                trainable_params=run.metrics["trainable_params"], total_params=run.metrics["total_params"],
                train_runtime=run.metrics.get("train_runtime"), wall_seconds=wall,
                monitor_seconds=sum(r["monitor_seconds"] or 0 for r in s["history"]),
                at_target={str(t): first_crossing(hist, t) for t in TARGETS})

def summary_lines(res:dict)->list[str]:
    "The readable table: per arm the best exact match and the forgetting at each target level."
    head = f"{'arm':34s} {'trainable':>9s} {'best EM':>7s} {'final EM':>8s} {'final KL':>8s} {'final dGL':>9s} {'dMC':>6s} | " + \
           " | ".join(f"KL@EM{t:g} dGL@EM{t:g}" for t in TARGETS)
    out = [head]
    for a in res["arms"]:
        h, f = a["history"], a["history"][-1]
        cells = []
        for t in TARGETS:
            x = a["at_target"][str(t)]
            cells.append(f"{x['kl_to_base']:8.3f} {x['general_loss_delta']:+9.3f}" if x else f"{'-':>8s} {'-':>9s}")
        out.append(f"{a['name']:34s} {a['trainable_params']:9,d} {max(r['exact_match'] for r in h):7.3f} {f['exact_match']:8.3f} "
                   f"{f['kl_to_base']:8.3f} {f['general_loss_delta']:+9.3f} {f['mc_accuracy_delta']:+6.3f} | " + " | ".join(cells))
    return out

def group_lines(res:dict)->list[str]:
    "Per lever, over the seeds: final exact match and KL to the base, and the KL to the base at equal task gain, with 95% t-intervals."
    import statistics
    T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776} # Student t, two-sided 95%, by degrees of freedom
    groups = {}
    for a in res["arms"]: groups.setdefault(a["group"], []).append(a)
    def ci(xs):
        if not xs: return "-"
        m = statistics.mean(xs)
        return f"{m:.3f} ± {T95.get(len(xs) - 1, 2.0) * statistics.stdev(xs) / len(xs) ** 0.5:.3f}" if len(xs) > 1 else f"{m:.3f}"
    g = f"{EQUAL_GAIN:g}"
    out = ["", f"{'lever':22s} {'seeds':>5s} {'final EM (95% CI)':>18s} {'final KL to base':>17s} {'KL at EM ' + g + ' (seeds reaching)':>30s}"]
    for name, arms_ in groups.items():
        at = [a["at_target"][g]["kl_to_base"] for a in arms_ if a["at_target"].get(g)]
        out.append(f"{name:22s} {len(arms_):5d} {ci([a['history'][-1]['exact_match'] for a in arms_]):>18s} "
                   f"{ci([a['history'][-1]['kl_to_base'] for a in arms_]):>17s} {ci(at) + f' ({len(at)}/{len(arms_)})':>30s}")
    return out

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "forgetting_experiment.json"))
    ap.add_argument("--work", default=None, help="folder for models and runs (default: a temporary folder)")
    ap.add_argument("--quick", action="store_true", help="a 2-arm smoke run into a temporary folder")
    ap.add_argument("--mitigations", action="store_true", help="the loss terms against forgetting, 3 seeds each")
    a = ap.parse_args()
    import torch
    cmd = "$ " + " ".join(["OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", "?"), ".venv/bin/python", "benchmarks/forgetting_experiment.py"]
                          + [shlex.quote(x) for x in sys.argv[1:]])
    machine = f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    work = Path(a.work or tempfile.mkdtemp(prefix="lmtune-forgetting-"))
    t0 = time.perf_counter()
    base_dir, pre = pretrain_base(work, a.quick)
    print(f"pretrained: loss {pre.losses[0]['loss']:.3f} -> {pre.final_loss:.3f} in {pre.metrics.get('train_runtime', 0):.0f} s", flush=True)
    todo = (mitigation_arms() if a.mitigations else arms())
    todo = [todo[0], todo[-1]] if a.quick else todo
    if a.mitigations and a.out.endswith("forgetting_experiment.json"): a.out = a.out.replace("forgetting_experiment", "forgetting_mitigations")
    results = []
    for i, arm in enumerate(todo, 1):
        r = run_arm(arm, base_dir, work, a.quick); results.append(r)
        f = r["history"][-1]
        print(f"[{i}/{len(todo)}] {r['name']}: EM {r['history'][0]['exact_match']:.3f} -> {f['exact_match']:.3f}, KL {f['kl_to_base']:.3f}, "
              f"general loss {f['general_loss_delta']:+.3f}, MC {f['mc_accuracy_delta']:+.3f} ({r['wall_seconds']:.0f} s)", flush=True)
    res = dict(command=f"{cmd}   # {datetime.date.today().isoformat()}, {machine}", seconds=round(time.perf_counter() - t0, 1),
               cpu_seconds=round(time.process_time(), 1),
               settings=dict(pretrain=PRETRAIN, sft=SFT, eval_every=EVAL_EVERY, n_train=N_TRAIN, held_out=HELD_OUT, replay=REPLAY,
                             targets=TARGETS, model="lmtune.models.make_tiny_model_dir(arch='llama', seed=0): hidden 128, 4 layers, vocab 1024",
                             train_data="lmtune.corpus.instruction_set(2000, seed=0, tasks=DOMAIN_TASKS)"),
               pretrain=dict(first_loss=pre.losses[0]["loss"], final_loss=pre.final_loss, seconds=pre.metrics.get("train_runtime")),
               arms=results)
    out = Path(a.out) if not a.quick else work / Path(a.out).name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=float))
    lines = [res["command"], f"total {res['seconds']:.0f} s wall, {res['cpu_seconds']:.0f} s CPU; pretraining loss {pre.losses[0]['loss']:.3f} -> {pre.final_loss:.3f}", ""] + summary_lines(res)
    if a.mitigations: lines += group_lines(res)
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[2:])); print(f"wrote {out} and {out.with_suffix('.txt')}")

if __name__ == "__main__": main()
