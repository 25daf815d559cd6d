"""Distributed runs that go wrong, on CPU with gloo: nodes started with different settings refuse to train; a killed
worker makes the run fail with a message, and the same command resumes from the last checkpoint. (A file of its own so
that `pytest -n 2 --dist loadfile` runs it alongside tests/test_distributed_launch.py.)

Every run is a tiny Llama on lmtune's built-in corpora; OMP_NUM_THREADS=1 so that two processes share two cores."""
import json, os, signal, subprocess, time
from pathlib import Path
from test_distributed_launch import QUIET, ROOT, TORCHRUN, _env, _log, _port, _run, tiny  # noqa: F401  (tiny: the fixture)

def test_nodes_started_with_different_settings_refuse_to_train(tiny, tmp_path):
    port = _port()
    cmd = lambda rank, lr: [TORCHRUN, '--nnodes', '2', '--nproc_per_node', '1', '--node_rank', str(rank), '--rdzv_endpoint',
                            f'127.0.0.1:{port}', '-m', 'lmtune', 'train', 'examples/pretrain.yaml', '--set', f'output_dir={tmp_path}',
                            '--set', f'learning_rate={lr}', *QUIET]
    nodes = [subprocess.Popen(cmd(0, '3e-3'), env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
             subprocess.Popen(cmd(1, '1e-3'), env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    outs = [p.communicate(timeout=120) for p in nodes]
    for p, (o, e) in zip(nodes, outs):
        assert p.returncode != 0
        assert 'started with different configurations' in e and 'learning_rate (0.003 on rank 0, 0.001 on rank 1)' in e, e[-3000:]
    assert not (tmp_path / 'lmtune_log.jsonl').exists()                        # nothing trained

def _rank1_pid(agent_pid):
    "The worker with RANK=1 among the torchrun agent's children."
    for d in Path('/proc').iterdir():
        if not d.name.isdigit(): continue
        try:
            stat = (d / 'stat').read_text()
            if int(stat.rsplit(')', 1)[1].split()[1]) != agent_pid: continue
            env = dict(x.split('=', 1) for x in (d / 'environ').read_bytes().decode(errors='replace').split('\0') if '=' in x)
        except (OSError, ValueError, IndexError): continue
        if env.get('RANK') == '1': return int(d.name)

def test_a_killed_worker_fails_the_run_with_a_message_and_the_same_command_resumes(tiny, tmp_path):
    out = tmp_path / 'run'
    cmd = [TORCHRUN, '--nproc_per_node', '2', '--max-restarts', '0', '-m', 'lmtune', 'train', 'examples/pretrain.yaml',
           '--set', f'output_dir={out}', '--set', 'max_steps=24', '--set', 'save_steps=2', '--set', 'timeout_s=60', *QUIET]
    p = subprocess.Popen(cmd, env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not (out / 'checkpoint-4' / 'trainer_state.json').exists():
        assert p.poll() is None, 'the run ended before it could be killed: ' + p.communicate()[1][-3000:]
        assert time.time() - t0 < 180, 'no checkpoint appeared'
        time.sleep(0.05)
    victim = _rank1_pid(p.pid)
    assert victim, 'found no rank-1 worker'
    os.kill(victim, signal.SIGKILL)
    o, e = p.communicate(timeout=120)
    assert time.time() - t0 < 240
    assert p.returncode != 0
    assert not (out / 'lmtune_result.json').exists()                             # it did not finish
    assert 'rank 0 stopped because another process of this run failed' in e, e[-4000:]
    assert 'Last complete checkpoint: ' + str(out / 'checkpoint-') in e and 'Run the same command again' in e, e[-4000:]
    r = _run(cmd)                                                                # the same command again
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert 'resumed from ' + str(out / 'checkpoint-') in r.stdout, r.stdout[-2000:]
    assert json.loads((out / 'lmtune_result.json').read_text())['global_step'] == 24
    begins = [x for x in _log(out) if x.get('event') == 'begin']
    assert len(begins) == 2 and begins[1]['step'] >= 4                          # the second launch started at the checkpoint
