"""How long a rating in `CompareWidget` takes to be saved (target: <= 50 ms from `choose()` to the line on disk, median).

In a real IPython kernel (started with jupyter_client, so every widget update goes out as comm messages on the kernel's
iopub, as in Jupyter), a `CompareWidget` on 200 ready pairs is displayed (so its static copy is refreshed too) and rated
200 times, cycling through left / right / tie / skip. For each rating it times

- to disk: from calling `choose()` to the return of its `append_record` (the JSON line written, flushed and fsynced);
  `append_record` is wrapped in the kernel to read the clock when it returns;
- the whole `choose()`: the line on disk, then the next pair drawn and the static copy refreshed;

and after each rating it checks (outside the timed span) that the file holds one more line than before. The ratings file
is on the same file system as the repository (not /tmp, which may be in memory), and that file system is named in the
output.

Usage:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compare_latency.py [--n 200] [--dir FOLDER] [--out FILE]
"""
import argparse, datetime, json, os, platform, shutil, statistics, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

KERNEL_CODE = r'''
import json, statistics, time
from pathlib import Path
from IPython.display import display
import lmtune.ui.compare as C

marks = []
_append = C.append_record
def timed_append(path, record):
    _append(path, record); marks.append(time.perf_counter())
C.append_record = timed_append   # choose() calls the module's append_record: the clock is read the moment it returns

path = Path(FOLDER) / "ratings.jsonl"
pairs = [dict(prompt=f"Question {i}: which river runs past the market town, and why?", base=f"base answer {i} " * 20,
              tuned=f"tuned answer {i} " * 20) for i in range(N)]
w = C.CompareWidget(path, pairs, seed=0)
display(w)
rows, choices = [], ("left", "right", "tie", "skip")
for k in range(N):
    t0 = time.perf_counter(); w.choose(choices[k % 4]); t1 = time.perf_counter()
    lines = len(path.read_bytes().splitlines())
    rows.append(dict(disk_ms=(marks[-1] - t0) * 1e3, choose_ms=(t1 - t0) * 1e3, lines=lines))
assert [r["lines"] for r in rows] == list(range(1, N + 1)), "each rating is one more line on disk when choose() returns"
print("RESULT " + json.dumps(dict(rows=rows, results=str(w.results()), static_kb=len(w.static_html()) / 1024)))
'''


def run_in_kernel(code:str, timeout:float=900)->dict:
    "Run `code` in a fresh python3 kernel and return the JSON it prints after 'RESULT '."
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3", env=dict(os.environ, OMP_NUM_THREADS="1"))
    out, err = [], []
    try:
        reply = kc.execute_interactive(code, timeout=timeout, output_hook=lambda m: (
            out.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else
            err.append("\n".join(m["content"].get("traceback", []))) if m["msg_type"] == "error" else None))
        if reply["content"]["status"] != "ok": raise RuntimeError("kernel code failed:\n" + "\n".join(err))
    finally:
        kc.stop_channels(); km.shutdown_kernel(now=True)
    line = next(l for l in "".join(out).splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def file_system(folder:Path)->str:
    "The type and device of the file system `folder` is on (from /proc/mounts), e.g. 'ext4 on /dev/vda'."
    try: mounts = [l.split() for l in Path("/proc/mounts").read_text().splitlines()]
    except OSError: return "unknown"
    best = max((m for m in mounts if str(folder.resolve()).startswith(m[1].rstrip("/") + "/") or m[1] == "/"), key=lambda m: len(m[1]))
    return f"{best[2]} on {best[0]} (mounted at {best[1]})"


def stats(xs:list)->str:
    "Median, 90th percentile and maximum of `xs` (milliseconds)."
    xs = sorted(xs)
    p90 = statistics.quantiles(xs, n=10)[-1]
    return f"median {statistics.median(xs):7.2f} ms   p90 {p90:7.2f} ms   max {xs[-1]:7.2f} ms   (n={len(xs)})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200, help="ratings to time")
    ap.add_argument("--dir", default=str(ROOT / "benchmarks"), help="where the scratch ratings folder is made")
    ap.add_argument("--out", help="also write the report here")
    a = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix=".compare-latency-", dir=a.dir))
    load0 = os.getloadavg()[0]
    try: r = run_in_kernel(f"N, FOLDER = {a.n}, {str(folder)!r}\n" + KERNEL_CODE)
    finally: fs = file_system(folder); shutil.rmtree(folder, ignore_errors=True)
    rows = r["rows"]
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?") \
        if Path("/proc/cpuinfo").exists() else platform.processor()
    cmd = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compare_latency.py" + (f" --out {a.out}" if a.out else "")
    disk = [x["disk_ms"] for x in rows]
    lines = [f"$ {cmd}   # {datetime.date.today()}, {os.cpu_count()} cores ({cpu}), load average {load0:.1f} at the start "
             f"and {os.getloadavg()[0]:.1f} at the end (other jobs share the cores), Python {platform.python_version()}",
             "",
             f"CompareWidget, {len(rows)} ratings of ready pairs in a real IPython kernel (widget displayed: comm messages and",
             f"the static copy included); the ratings file on {fs}. Target: a rating to its saved line <= 50 ms, median.",
             "",
             f"choose() to the line on disk (written, flushed, fsynced)  {stats([x['disk_ms'] for x in rows])}",
             f"the whole choose() (then the next pair and the static copy)  {stats([x['choose_ms'] for x in rows])}",
             f"ratings over 50 ms to disk: {sum(x > 50 for x in disk)} of {len(disk)}; each rating was one more line on disk when "
             "choose() returned: yes",
             f"static copy at the end: {r['static_kb']:.1f} KiB; {r['results']}",
             f"verdict: {'meets' if statistics.median(disk) <= 50 else 'MISSES'} the 50 ms median target"]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if a.out: Path(a.out).write_text(text)


if __name__ == "__main__":
    sys.exit(main())
