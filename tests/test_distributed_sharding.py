"""What each process holds under FSDP and ZeRO, measured on two CPU processes (gloo), against lmtune's estimate.

accelerate runs FSDP and DeepSpeed only on accelerators (on a CPU it falls back to DDP, which `lmtune train` refuses),
so these tests call the engines the way accelerate and the Trainer do: torch's FSDP2 `fully_shard` on every decoder
layer (accelerate's TRANSFORMER_BASED_WRAP on `_no_split_modules`) and then the root; `deepspeed.initialize` with the
JSON `lmtune.train.launch.deepspeed_config` writes, parsed first by DeepSpeed's own `DeepSpeedConfig` at world size 2.
Tensor parallelism: transformers' `DistributedConfig(tp_size=2)`. All train the tiny Llama from the same weights on the
same global batch; the one-process reference trains it unsharded on rank 0.

Compared with `estimate_memory(..., method='full', num_gpus=2, strategy=..., precision='fp32', optim='adamw_torch')`:
the persistent components weights, gradients and optimizer states (the breakdown is at the step's peak moment;
with gradient_accumulation_steps=2 the gradients persist through every moment, so the estimate is asked with 2).
Tolerance 1% (each engine pads shards to a multiple of the world size or an alignment)."""
import json, os, subprocess, sys
from pathlib import Path
import importlib.util
import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = str(Path(sys.executable).parent / 'torchrun')
HAVE_DEEPSPEED = importlib.util.find_spec('deepspeed') is not None

WORKER = r'''
import json, sys, torch, torch.distributed as dist
from pathlib import Path
from datetime import timedelta
from lmtune.models import tiny_model_dir, pack_texts
from lmtune.corpus import general_corpus
from lmtune.settings import RunSettings
from lmtune.train.launch import deepspeed_config
out, with_deepspeed = sys.argv[1], sys.argv[2] == '1'
d = tiny_model_dir('llama')
dist.init_process_group('gloo', timeout=timedelta(seconds=120))
rank, world = dist.get_rank(), dist.get_world_size()
from transformers import AutoModelForCausalLM, AutoTokenizer
STEPS, B, LR = 8, 4, 1e-3
S = RunSettings(method='full', batch_size=B, seq_len=64, precision='fp32', optim='adamw_torch', num_gpus=world,
                learning_rate=LR, max_grad_norm=0.0, weight_decay=0.0)
blocks = pack_texts(AutoTokenizer.from_pretrained(d), general_corpus(400, seed=3), 64)
glob = lambda step: blocks[step * B * world:(step + 1) * B * world]      # the global batch of a step
mine = lambda step: glob(step)[rank * B:(rank + 1) * B]                  # this rank's share
load = lambda **kw: AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, **kw)
adamw = lambda params: torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
local = lambda t: t.to_local() if hasattr(t, 'to_local') else t
nbytes = lambda ts: sum(local(t).numel() * t.element_size() for t in ts if t is not None)
def mean(x):
    t = torch.tensor([x]); dist.all_reduce(t); return t.item() / world
res = {}

if rank == 0:                                                           # one process, the global batch, no sharding
    m, losses = load(), []
    opt = adamw(m.parameters())
    for s in range(STEPS):
        x = glob(s); loss = m(input_ids=x, labels=x).loss; loss.backward(); opt.step(); opt.zero_grad(); losses.append(loss.item())
    res['reference'] = dict(losses=losses)
dist.barrier()

from torch.distributed.fsdp import fully_shard                          # FSDP2, full shard, as accelerate wraps it
m = load()
for layer in m.model.layers: fully_shard(layer)
fully_shard(m)
opt, losses = adamw(m.parameters()), []
for s in range(STEPS):
    x = mine(s); loss = m(input_ids=x, labels=x).loss; loss.backward()
    grads = nbytes(p.grad for p in m.parameters())
    opt.step(); opt.zero_grad(); losses.append(mean(loss.item()))
res['fsdp'] = dict(losses=losses, weights=nbytes(m.parameters()), gradients=grads,
                   optimizer_states=nbytes(v for st in opt.state.values() for v in st.values() if v.dim() > 0))

if with_deepspeed:
    import deepspeed
    from deepspeed.runtime.config import DeepSpeedConfig
    from deepspeed.utils import safe_get_local_grad
    deepspeed.ops.__compatible_ops__['deepspeed_shm_comm'] = False   # skip its JIT-compiled shared-memory all-reduce (~90 s to build); gloo runs the same collectives
    deepspeed.init_distributed(dist_backend='gloo')                   # DeepSpeed's view of the process group above
    for st in ('zero2', 'zero3'):
        cfg = deepspeed_config(S.replace(strategy=st))                  # the JSON lmtune writes for this run
        parsed = DeepSpeedConfig(cfg)                                   # DeepSpeed's parser, at world size 2
        m = load()
        engine, opt, _, _ = deepspeed.initialize(model=m, optimizer=adamw(m.parameters()), config=cfg)
        losses = []
        for s in range(STEPS):
            x = mine(s); loss = engine(input_ids=x, labels=x).loss; engine.backward(loss)
            if st == 'zero3': grads = nbytes(safe_get_local_grad(p) for p in m.parameters())
            else: grads = nbytes(t for ts in opt.averaged_gradients.values() for t in ts)
            engine.step(); losses.append(mean(loss.item()))
        params = [p.ds_tensor if st == 'zero3' else p for p in m.parameters()]
        master = opt.fp32_partitioned_groups_flat if st == 'zero3' else opt.single_partition_of_fp32_groups
        res[st] = dict(losses=losses, weights=nbytes(params), gradients=grads, fp32_partition=nbytes(master),
                       optimizer_states=nbytes(v for x in opt.optimizer.state.values() for v in x.values() if v.dim() > 0),
                       parsed=dict(world_size=parsed.world_size, train_batch_size=parsed.train_batch_size, stage=parsed.zero_optimization_stage))
        del engine, opt

from transformers.distributed import DistributedConfig                   # tensor parallelism: every rank sees the global batch
m = load(distributed_config=DistributedConfig(tp_size=world))
opt, losses = adamw(m.parameters()), []
for s in range(STEPS):
    x = glob(s); loss = m(input_ids=x, labels=x).loss; loss.backward(); opt.step(); opt.zero_grad(); losses.append(mean(loss.item()))
res['tp'] = dict(losses=losses, weights=nbytes(m.parameters()), sharded=type(m.model.layers[0].self_attn.q_proj.weight).__name__)

everyone = [None] * world
dist.all_gather_object(everyone, res)
if rank == 0: Path(out).write_text(json.dumps(everyone))
dist.destroy_process_group()
'''

@pytest.fixture(scope='module')
def measured(tmp_path_factory):
    from lmtune.models import tiny_model_dir
    tiny_model_dir('llama')                                     # built once, before the workers look for it
    tmp = tmp_path_factory.mktemp('sharding')
    script, out = tmp / 'worker.py', tmp / 'measured.json'
    script.write_text(WORKER)
    env = dict(os.environ, OMP_NUM_THREADS='1', TOKENIZERS_PARALLELISM='false')
    run = lambda: subprocess.run([TORCHRUN, '--nproc_per_node', '2', str(script), str(out), '1' if HAVE_DEEPSPEED else '0'],
                                 env=env, capture_output=True, text=True, timeout=400, cwd=ROOT)
    r = run()
    if r.returncode != 0 and 'terminate called without an active exception' in r.stderr:
        r = run() # seen once on 2 loaded cores: a worker aborted in C++ teardown; results only come from a whole run
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    return json.loads(out.read_text())

def _estimate(strategy):
    from lmtune.estimate.memory import estimate_memory
    from lmtune.models import tiny_model_dir
    from lmtune.settings import RunSettings
    s = RunSettings(method='full', batch_size=4, seq_len=64, precision='fp32', optim='adamw_torch', num_gpus=2, strategy=strategy,
                    gradient_accumulation_steps=2)
    return estimate_memory(tiny_model_dir('llama'), s, stage='continued').breakdown

COMPONENTS = {'weights': 'weights', 'gradients': 'gradients', 'optimizer_states': 'optimizer states'}

def _check_against_estimate(per_rank, strategy):
    est = _estimate(strategy)
    for rank, got in enumerate(per_rank):
        got = dict(got)   # DeepSpeed's fp32 master partition: the estimate counts it with the optimizer states
        if 'fp32_partition' in got: got['optimizer_states'] += got['fp32_partition']
        for ours, theirs in COMPONENTS.items():
            assert got[ours] == pytest.approx(est[theirs], rel=0.01), (strategy, rank, ours, got[ours], est[theirs])

def test_fsdp_full_shard_trains_like_one_process_and_holds_what_the_estimate_says(measured):
    ref, fsdp = measured[0]['reference']['losses'], measured[0]['fsdp']['losses']
    assert sum(fsdp[-2:]) < sum(fsdp[:2]) - 0.5, fsdp                        # falling loss
    assert fsdp == pytest.approx(ref, rel=1e-4)                               # the same steps as unsharded training
    _check_against_estimate([r['fsdp'] for r in measured], 'fsdp')

@pytest.mark.skipif(not HAVE_DEEPSPEED, reason='DeepSpeed is not installed')
@pytest.mark.parametrize('strategy', ['zero2', 'zero3'])
def test_zero_trains_like_one_process_and_holds_what_the_estimate_says(measured, strategy):
    got = measured[0][strategy]
    assert got['parsed'] == dict(world_size=2, train_batch_size=8, stage=int(strategy[-1]))
    assert got['losses'] == pytest.approx(measured[0]['reference']['losses'], rel=1e-4)
    _check_against_estimate([r[strategy] for r in measured], strategy)

def test_tensor_parallel_training_runs_on_cpu(measured):
    tp = measured[0]['tp']
    assert tp['sharded'] == 'DTensor'
    assert tp['losses'] == pytest.approx(measured[0]['reference']['losses'], rel=1e-4)
    full = _estimate('ddp')['weights']
    for r in measured: assert r['tp']['weights'] < 0.6 * full                # each process holds about half of the weights
