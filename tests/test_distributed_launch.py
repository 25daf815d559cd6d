"""`lmtune train` on several processes, on CPU with gloo, as a user launches it: every file in examples/ runs to the
end; the SLURM script's two torchrun "nodes" on localhost train the same losses as one process with the same global
batch, and so does `accelerate launch` with the config file lmtune wrote; `launch()` (accelerate's notebook_launcher)
runs the SFT example with the forgetting monitor on two processes and gets the one-process monitor's numbers, shown and
logged once. tests/test_distributed_faults.py has the runs that go wrong.

Every run is a tiny Llama on lmtune's built-in corpora; OMP_NUM_THREADS=1 so that two processes share two cores."""
import json, os, socket, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / 'examples').glob('*.yaml'))
PY = sys.executable
TORCHRUN = str(Path(PY).parent / 'torchrun')
QUIET = ['--set', 'progress_bar=false']

def _env():
    return dict(os.environ, OMP_NUM_THREADS='1', TOKENIZERS_PARALLELISM='false', PYTHONUNBUFFERED='1')

def _port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _run(cmd, timeout=240, **kw):
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kw)

def _log(out):
    "The run's log (rank 0's log records, appended while it trained)."
    return [json.loads(l) for l in (Path(out) / 'lmtune_log.jsonl').read_text().splitlines()]

def _losses(out): return {r['step']: r['loss'] for r in _log(out) if 'loss' in r}

@pytest.fixture(scope='module')
def tiny():
    "Build the tiny model once, before any test starts processes that would all build it."
    from lmtune.models import tiny_model_dir
    return tiny_model_dir('llama')

@pytest.fixture(scope='module')
def one_process(tiny, tmp_path_factory):
    "Every example, run to the end on one process by `lmtune.train.launch.main` (the `lmtune train` entry), in one Python process."
    root = tmp_path_factory.mktemp('examples')
    runs = {f.stem: root / f.stem for f in EXAMPLES}
    code = ("import sys; from lmtune.train.launch import main\n"
            "for f, out in zip(sys.argv[1::2], sys.argv[2::2]):\n"
            "    code = main(['train', f, '--set', f'output_dir={out}', '--set', 'progress_bar=false'])\n"
            "    print(f'EXIT {f} {code}', flush=True)\n")
    args = [x for f in EXAMPLES for x in (str(f), str(runs[f.stem]))]
    r = _run([PY, '-c', code, *args], timeout=400)
    return runs, r

@pytest.mark.parametrize('example', [f.stem for f in EXAMPLES])
def test_every_example_runs_to_the_end(one_process, example):
    runs, r = one_process
    out = runs[example]
    assert f"EXIT {ROOT / 'examples' / example}.yaml 0" in r.stdout, r.stdout[-2000:] + r.stderr[-4000:]
    result = json.loads((out / 'lmtune_result.json').read_text())
    cfg = __import__('yaml').safe_load((ROOT / 'examples' / f'{example}.yaml').read_text())
    assert result['global_step'] == cfg['max_steps']
    losses = list(_losses(out).values())
    if cfg['stage'] == 'dpo':           # a random tiny model has no preference to learn in 10 steps; the policy must move off the reference
        assert any(r.get('rewards/chosen') not in (None, 0.0) for r in _log(out))
    else: assert len(losses) >= 2 and losses[-1] < losses[0], losses              # it learned something
    assert (out / 'lmtune_config.yaml').exists()

FAKE_SRUN = r"""#!/bin/bash
# srun on one machine: the command once per "node" (SLURM_NODEID set), or once with --ntasks=1
n=$SLURM_NNODES
while [[ $1 == --* ]]; do [[ $1 == --ntasks=1 ]] && n=1; shift; done
pids=()
for ((i=0; i<n; i++)); do SLURM_NODEID=$i "$@" & pids+=($!); done
rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done; exit $rc
"""

def test_two_nodes_train_the_losses_of_one_process(one_process, tmp_path):
    """examples/slurm_two_nodes.sbatch on two "nodes" of localhost (a stand-in srun starts its two torchrun
    invocations, c10d rendezvous, one gloo process each) against one process: the file's global_batch_size makes
    gradient accumulation 2 on one process and 1 on two, so the optimizer steps see the same sequences. Tolerance:
    relative 1e-5 on each logged loss (fp32 on CPU; only the order of the gradient sums differs). The example's 20
    steps stay inside the first epoch (25 steps): at an epoch's end one process with accumulation and two with DDP
    split the last, incomplete global batch differently."""
    runs, _ = one_process
    out, bin_ = tmp_path / 'two-nodes', tmp_path / 'bin'
    bin_.mkdir()
    (bin_ / 'srun').write_text(FAKE_SRUN)
    (bin_ / 'scontrol').write_text('#!/bin/bash\necho 127.0.0.1\n')
    for f in bin_.iterdir(): f.chmod(0o755)
    env = dict(_env(), PATH=f"{bin_}:{Path(PY).parent}:{os.environ['PATH']}", SLURM_NNODES='2', SLURM_JOB_ID='4242',
               SLURM_JOB_NODELIST='node[1-2]', SLURM_GPUS_ON_NODE='1', PORT=str(_port()))
    r = subprocess.run(['bash', 'examples/slurm_two_nodes.sbatch', 'examples/pretrain.yaml', '--set', f'output_dir={out}', *QUIET],
                       env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    assert "2 machine(s) x 1 GPU(s)" in r.stdout and "lmtune's estimate per GPU" in r.stdout      # the dry run in the job log
    assert 'this launch runs 2 x 1 process(es)' in r.stdout
    begin = [x for x in _log(out) if x.get('event') == 'begin']
    assert begin[0]['world_size'] == 2
    one, two = _losses(runs['pretrain']), _losses(out)
    steps = sorted(one)
    assert steps == sorted(two) and len(steps) >= 4
    for s in steps: assert two[s] == pytest.approx(one[s], rel=1e-5), (s, one[s], two[s])

def test_accelerate_launch_with_the_config_lmtune_wrote(one_process, tmp_path):
    """`lmtune train --dry-run` writes accelerate's config file for two processes; `accelerate launch --config_file` with
    it runs the continued-pretraining example on two CPU processes to the losses of one process (relative 1e-5)."""
    runs, _ = one_process
    out = tmp_path / 'acc'
    r = _run([PY, '-m', 'lmtune', 'train', 'examples/continued.yaml', '--dry-run', '--set', f'output_dir={out}', '--set', 'num_gpus=2'])
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = out / 'launch' / 'accelerate.yaml'
    assert f'accelerate launch --config_file {cfg}' in r.stdout, r.stdout
    r = _run([str(Path(PY).parent / 'accelerate'), 'launch', '--config_file', str(cfg), '-m', 'lmtune', 'train', 'examples/continued.yaml',
              '--set', f'output_dir={out}', '--set', 'num_gpus=2', *QUIET])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert [x['world_size'] for x in _log(out) if x.get('event') == 'begin'] == [2]
    one, two = _losses(runs['continued']), _losses(out)
    assert sorted(one) == sorted(two) and len(one) >= 3
    for k in one: assert two[k] == pytest.approx(one[k], rel=1e-5), (k, one[k], two[k])

LAUNCH = '''
import json, sys
from lmtune.train.launch import launch
r = launch('examples/sft.yaml', num_processes=2, sets=[f'output_dir={sys.argv[1]}', 'progress_bar=false'], show=False)
print('RESULT', json.dumps(dict(losses=r.losses, metrics=r.metrics, world=[x['world_size'] for x in r.log if x.get('event') == 'begin'])))
'''

def test_notebook_launch_trains_on_two_processes_with_the_monitor_of_one(one_process, tmp_path):
    """`launch()` forks two trainers through accelerate's notebook_launcher. The monitor (console display) measures on
    both; its numbers must equal the one-process run's (step 0: the same base model, exactly; later steps: the same
    global batch, relative 1e-4 as DDP and accumulation sum gradients in a different order), printed once per
    evaluation and logged once."""
    runs, _ = one_process
    out = tmp_path / 'nb'
    r = _run([PY, '-c', LAUNCH, str(out)], timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    res = json.loads(r.stdout.split('RESULT ', 1)[1])
    assert res['world'] == [2] and len(res['losses']) >= 2 and res['metrics']['train_loss'] > 0
    evals = lambda d: [x for x in _log(d) if 'eval_kl_to_base' in x]
    one, two = evals(runs['sft']), evals(out)
    assert [x['step'] for x in two] == [x['step'] for x in one] == [0, 5, 10]    # each evaluation logged once
    metrics = ('general_loss', 'general_loss_delta', 'kl_to_base', 'mc_accuracy', 'mc_flips', 'task_loss', 'exact_match', 'token_f1')
    keys = [f'eval_{k}' for k in metrics if f'eval_{k}' in one[0]]
    assert {'eval_general_loss', 'eval_kl_to_base', 'eval_mc_accuracy', 'eval_task_loss'} <= set(keys), keys
    for a, b in zip(one, two):
        for k in keys: assert b[k] == pytest.approx(a[k], rel=1e-4 if a['step'] else 1e-6, abs=1e-6), (a['step'], k, a[k], b[k])
    lines = [l for l in r.stdout.splitlines() if l.startswith('[monitor] step')]
    assert len(lines) == 3, r.stdout[-3000:]                                     # shown once per evaluation
