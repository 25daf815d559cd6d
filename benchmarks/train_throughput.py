"""Training throughput: lmtune's `sft` (LoRA and full) against a plain transformers `Trainer` on the same model,
data and settings. Prints tokens/s, peak memory and MFU for each variant.

Each variant runs in its own subprocess, so peak memory is per variant (CUDA: `torch.cuda.max_memory_allocated`;
CPU: the process's peak RSS). Tokens are non-padding input tokens seen (`include_num_input_tokens_seen="non_padding"`)
over the trainer's `train_runtime`, counted the same way for every variant. MFU = (6 N + 12 L d S) x tokens/s / peak
FLOP/s (PaLM's model-FLOPs definition with N = all parameters of the base model, L layers, d width, S sequence length;
the same formula for LoRA, so LoRA's MFU counts the frozen weights' forward and backward as model FLOPs);
peak FLOP/s comes from `lmtune.catalog.gpu_spec` for the detected GPU (bf16 or fp32 peak, by precision), and is not
reported on CPU.

GPU:   python benchmarks/train_throughput.py --model <model dir or hub id> --steps 50 --batch-size 8 --seq-len 1024
CPU smoke test (checks that it runs; not a speed claim):
       python benchmarks/train_throughput.py --tiny --steps 5
"""
import argparse, json, os, resource, shutil, subprocess, sys, tempfile, time
from pathlib import Path

VARIANTS = ("lmtune-lora", "lmtune-full", "trainer-lora", "trainer-full")

def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model directory or hub id (safetensors); default with --tiny: a tiny llama built here")
    p.add_argument("--tiny", action="store_true", help="build a tiny random llama (CPU smoke test)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--rows", type=int, default=2000, help="instruction rows (lmtune.corpus.instruction_set)")
    p.add_argument("--precision", default="auto", choices=("auto", "bf16", "mixed", "fp16", "fp32"))
    p.add_argument("--packing", action="store_true", help="lmtune variants: pack rows padding-free")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--out", help="also write the results as JSON here")
    p.add_argument("--variant", help=argparse.SUPPRESS)  # internal: run one variant in this process
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    return p.parse_args()

def _precision(p, method):
    "What lmtune's `sft` resolves `precision` to for `method` here (`lmtune.settings.resolve_precision`), for both variants."
    import torch
    from lmtune.settings import resolve_precision
    cuda = torch.cuda.is_available()
    return resolve_precision(p, method, "sft", cuda=cuda, bf16_supported=cuda and torch.cuda.is_bf16_supported())

def _plain_trainer(a, model_dir, lora:bool, out):
    "A plain transformers Trainer: same rows rendered with the chat template, loss on the response, padded batches."
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments
    from datasets import Dataset
    from lmtune.corpus import instruction_set
    tok = AutoTokenizer.from_pretrained(model_dir)
    prec = _precision(a.precision, "lora" if lora else "full")
    # an explicit dtype, as lmtune loads: fp32 master weights unless precision is bf16 (not the checkpoint's saved dtype)
    model = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True,
                                                 dtype=torch.bfloat16 if prec == "bf16" else torch.float32)
    if lora:
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
        if a.gradient_checkpointing: model.enable_input_require_grads()  # frozen embeddings: checkpointed blocks need a grad input
    def encode(r):
        prompt = [dict(role="user", content=r["prompt"])]
        p_ids = tok.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
        ids = tok.apply_chat_template(prompt + [dict(role="assistant", content=r["response"])], tokenize=True, return_dict=True)["input_ids"][:a.seq_len]
        return dict(input_ids=ids, labels=[-100] * min(len(p_ids), len(ids)) + ids[len(p_ids):])
    ds = Dataset.from_list(instruction_set(a.rows)).map(encode, remove_columns=["prompt", "response"])
    def collate(rows):
        n = max(len(r["input_ids"]) for r in rows)
        pad = lambda x, v: x + [v] * (n - len(x))
        return dict(input_ids=torch.tensor([pad(r["input_ids"], tok.pad_token_id) for r in rows]),
                    labels=torch.tensor([pad(r["labels"], -100) for r in rows]),
                    attention_mask=torch.tensor([pad([1] * len(r["input_ids"]), 0) for r in rows]))
    args = TrainingArguments(output_dir=out, per_device_train_batch_size=a.batch_size, max_steps=a.steps,
                             learning_rate=2e-4 if lora else 1e-5, bf16=prec in ("bf16", "mixed"), fp16=prec == "fp16",
                             activation_checkpointing=a.gradient_checkpointing, logging_steps=max(1, a.steps // 5),
                             save_strategy="no", report_to="none", include_num_input_tokens_seen="non_padding",
                             disable_tqdm=True, seed=42, remove_unused_columns=False)
    tr = Trainer(model=model, args=args, train_dataset=ds, data_collator=collate)
    m = tr.train().metrics
    return model, m, tr.state.num_input_tokens_seen, args.optim

def _lmtune(a, model_dir, method, out):
    from lmtune.train.stages import sft
    from lmtune.corpus import instruction_set
    r = sft(model_dir, instruction_set(a.rows), method=method, max_steps=a.steps, batch_size=a.batch_size, seq_len=a.seq_len,
            precision=a.precision, packing=a.packing, gradient_checkpointing=a.gradient_checkpointing,
            logging_steps=max(1, a.steps // 5), save_steps=10**9, output_dir=out, resume=False, progress_bar=False)
    from lmtune.train.model import resolve_optim
    return r.model, r.metrics, r.metrics["num_input_tokens_seen"], resolve_optim(r.settings.optim)

def _cuda():
    import torch
    return torch.cuda.is_available()

def run_variant(a):
    import torch
    if _cuda(): torch.cuda.reset_peak_memory_stats()
    out = tempfile.mkdtemp(prefix=f"tp-{a.variant}-")
    kind, method = a.variant.split("-")
    if kind == "lmtune": model, m, tokens, optim = _lmtune(a, a.model_dir, method, out)
    else: model, m, tokens, optim = _plain_trainer(a, a.model_dir, method == "lora", out)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = base.config
    n = sum(p.numel() for p in base.parameters())
    tps = tokens / m["train_runtime"]
    flops_per_token = 6 * n + 12 * cfg.num_hidden_layers * cfg.hidden_size * a.seq_len
    res = dict(variant=a.variant, steps=a.steps, tokens=tokens, runtime_s=m["train_runtime"], tokens_per_s=tps,
               params=n, optim=optim, precision=_precision(a.precision, method), device="cpu", mfu=None)
    if _cuda():
        name = torch.cuda.get_device_name()
        res.update(device=name, peak_mem_gib=torch.cuda.max_memory_allocated() / 2**30)
        try:
            from lmtune.catalog import gpu_spec
            g = gpu_spec(name)
            peak = (g.bf16_tflops if res["precision"] in ("bf16", "mixed", "fp16") else g.fp32_tflops) * 1e12
            res["mfu"] = flops_per_token * tps / peak
        except ValueError: pass
    else:
        res["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB (Linux)
    shutil.rmtree(out, ignore_errors=True)
    print("RESULT " + json.dumps(res), flush=True)

def main():
    a = parse()
    if a.variant: return run_variant(a)
    model_dir, tmp_model = a.model, None
    if model_dir is None:
        if not a.tiny: sys.exit("pass --model <dir or hub id>, or --tiny for a CPU smoke test")
        from lmtune.models import make_tiny_model_dir
        tmp_model = tempfile.mkdtemp(prefix="tp-model-")
        model_dir = str(make_tiny_model_dir(Path(tmp_model) / "tiny", "llama", seed=0))
    rows = []
    for v in a.variants.split(","):
        cmd = [sys.executable, __file__, "--variant", v, "--model-dir", model_dir] + [x for x in sys.argv[1:]]
        p = subprocess.run(cmd, capture_output=True, text=True)
        line = next((l for l in p.stdout.splitlines() if l.startswith("RESULT ")), None)
        if p.returncode or line is None:
            print(f"{v}: FAILED\n{p.stderr[-3000:]}"); continue
        rows.append(json.loads(line[7:]))
    mem = "peak_mem_gib" if rows and "peak_mem_gib" in rows[0] else "peak_rss_gib"
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"device: {rows[0]['device'] if rows else '?'}; precision {a.precision} (resolved per variant below); "
          f"batch {a.batch_size} x seq {a.seq_len}, {a.steps} steps; {rows[0]['params'] if rows else '?':,} params")
    print(f"{'variant':14s} {'tokens/s':>10s} {mem:>13s} {'MFU':>7s} {'runtime s':>10s} {'tokens':>8s}  {'precision':9s} optim")
    for r in rows:
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
        print(f"{r['variant']:14s} {r['tokens_per_s']:10.0f} {r[mem]:13.2f} {mfu:>7s} {r['runtime_s']:10.2f} {r['tokens']:8d}  {r['precision']:9s} {r['optim']}")
    if a.out: Path(a.out).write_text(json.dumps(dict(args=vars(a), results=rows), indent=1))
    if tmp_model: shutil.rmtree(tmp_model, ignore_errors=True)

if __name__ == "__main__": main()
