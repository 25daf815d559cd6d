"""The analytic memory model of the preference and RL stages (DPO, KTO, ORPO, GRPO) against PyTorch's tracer: every
stage x method x precision x gradient checkpointing on two small architectures, each traced as its TRL 1.16 trainer
runs a micro-batch (`lmtune.estimate.trace.trace_memory(..., stage=...)`: the reference forward, KTO's KL batch,
GRPO's generation with its KV cache) and estimated by `lmtune.estimate.memory` for the same run with the CPU's
attention kernel and without the cuBLAS workspace a CPU does not allocate.

Both run on the CPU: this checks the formula's bookkeeping of the stages (which tensors exist at which moment), not a
GPU's kernels. LoRA in bf16 carries the CPU's LoRA offset measured for supervised fine-tuning in
`benchmarks/results/trace_accuracy.txt` (CPU kernels keep more for backward); the `sft` rows show it for comparison.

Usage:
    python benchmarks/stage_trace_accuracy.py [--out benchmarks/results/stage_trace_accuracy.txt]
"""
import argparse, datetime, itertools, os, platform, statistics, time, warnings
from dataclasses import replace
warnings.filterwarnings("ignore")
from lmtune.estimate.memory import _estimate
from lmtune.estimate.run import WORKSPACE_BYTES, resolve_run, trained_run
from lmtune.estimate.trace import trace_memory

ARCHS = {"llama": dict(model_type="llama", vocab_size=256, hidden_size=256, intermediate_size=1024, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=False),
         "qwen2": dict(model_type="qwen2", vocab_size=256, hidden_size=256, intermediate_size=768, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True)}
RUN = dict(batch_size=4, seq_len=128, optim="adamw_torch", max_completion_length=16, num_generations=4, beta=0.04)

def formula(cfg, stage, **kw)->tuple:
    "(peak allocated without the cuBLAS workspace, where) with CPU attention; GRPO scores every position, as TRL's head does on a CPU."
    r = replace(resolve_run(cfg, stage=stage, **kw), attn="sdpa_cpu")
    if stage == "grpo": t = trained_run(r); r = replace(t, passes=replace(t.passes, scored=t.passes.seq))
    e = _estimate(r)
    return e.peak_allocated - WORKSPACE_BYTES, e.peak_at

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default='benchmarks/results/stage_trace_accuracy.txt')
    a = ap.parse_args()
    lines = [f"$ python benchmarks/stage_trace_accuracy.py   # {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%MZ}, "
             f"{os.cpu_count()} CPU cores, {platform.machine()}",
             f"{'arch':6s} {'stage':5s} {'method':6s} {'precision':9s} {'gc':3s} {'traced':>9s} {'formula':>9s} {'error':>7s} "
             f"{'trace s':>7s}  formula's peak at"]
    errs = {}
    for arch, stage, method, prec, gc in itertools.product(ARCHS, ("sft", "dpo", "kto", "orpo", "grpo"), ("full", "lora"),
                                                           ("bf16", "mixed"), (False, True)):
        kw = dict(RUN, method=method, precision=prec, gradient_checkpointing=gc)
        t0 = time.perf_counter()
        t = trace_memory(ARCHS[arch], stage=stage, **kw).peak_allocated
        s = time.perf_counter() - t0
        f, at = formula(ARCHS[arch], stage, **kw)
        e = f/t - 1
        errs.setdefault((stage, method == "lora" and prec == "bf16"), []).append(e)
        lines.append(f"{arch:6s} {stage:5s} {method:6s} {prec:9s} {'on' if gc else 'off':3s} {t/2**20:8.2f}M {f/2**20:8.2f}M "
                     f"{e:+7.1%} {s:7.1f}  {at}")
        print(lines[-1], flush=True)
    lines.append("")
    for (stage, lora16), e in errs.items():
        ae = [abs(x) for x in e]
        lines.append(f"{stage:5s} {'LoRA bf16' if lora16 else 'the rest':9s}: median |error| {statistics.median(ae):5.1%}, "
                     f"worst {max(ae):5.1%} over {len(ae)} cases")
    text = '\n'.join(lines) + '\n'
    print('\n'.join(lines[-len(errs):]))
    open(a.out, 'w').write(text)

if __name__ == '__main__': main()
