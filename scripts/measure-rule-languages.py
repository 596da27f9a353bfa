#!/usr/bin/env python3
"""The cost of the greeting rule in Rust, JavaScript and Python, measured.

    source scripts/rule-toolchains.sh && cargo build --release
    scripts/measure-rule-languages.py [--runs 51] [--callqa target/release/callqa]

Builds plugins/js-greeting and plugins/python-greeting (the Rust greeting is
the one host/build.rs builds), then prints a Markdown table per rule:
module size; first load (compile with cranelift) against a cached load (the
compiled-module cache), each the wall time of a `callqa rule run` process;
and, per session, the median wall time of one evaluation in a fresh
instance, inside one `callqa rule test` process that evaluates the same case
--runs times (the first is dropped), with the fuel and peak memory that
`callqa rule run --json` reports (both are the same on every run).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ten_minute_call() -> dict:
    """The 10-minute call of host/benches/rules.rs: 150 segments, 20 events."""
    agent = ["您好，欢迎致电售后服务中心，请问有什么可以帮您？", "我马上帮您催一下，请稍等", "好的，我帮您查询一下订单", "thank you for calling, is there anything else?"]
    customer = ["我的冰箱不制冷了", "我已经催了好几次了", "订单号是 2024050112345", "okay, thanks"]
    segments = [
        {"id": f"t{i}", "role": "agent" if i % 2 == 0 else "customer", "text": (agent if i % 2 == 0 else customer)[i % 4],
         "begin_ms": i * 4000, "end_ms": i * 4000 + 3500}
        for i in range(150)
    ]
    kinds = ["ticket-chased", "remark", "order", "ticket-created"]
    events = [{"kind": kinds[i % 4], "at": f"2024-05-01T09:{i * 2:02}:00Z", "attributes": {"ticket": f"T-{i}"}} for i in range(20)]
    return {"id": "call", "contact": {"contact_id": "call", "channel": "voice", "queue": "Hotline",
            "initiated_at": "2024-05-01T09:00:00Z", "connected_to_agent_at": "2024-05-01T09:00:30Z"},
            "segments": segments, "events": events}


# (label, session, params). The last reads every agent segment: a window as
# long as the call and a phrase that never matches.
def sessions(work: Path) -> list:
    call = work / "ten-minute-call.json"
    call.write_text(json.dumps(ten_minute_call(), ensure_ascii=False))
    samples = ROOT / "samples/sessions"
    return [
        ("voice, 6 segments (en, pass)", samples / "voice-en-billing-pass.json", {}),
        ("chat, 6 messages (zh, fail)", samples / "chat-zh-order-chase-noaction.json", {}),
        ("10-min call, 150 segments (pass)", call, {}),
        ("10-min call, every agent segment read (fail)", call, {"within-seconds": 600, "phrases": ["no such phrase"]}),
    ]


def run(cmd, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if out.returncode not in (0, 1):
        sys.exit(f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stdout}{out.stderr}")
    return out


def build(work: Path) -> dict:
    js = os.environ.get("CALLQA_COMPONENTIZE_JS") or shutil.which("componentize-js")
    py = os.environ.get("CALLQA_COMPONENTIZE_PY") or shutil.which("componentize-py")
    if not js or not py:
        sys.exit("componentize-js and componentize-py are needed: `source scripts/rule-toolchains.sh` first")
    modules = {"Rust (plugins/greeting)": ROOT / "plugins/target/wasm32-wasip2/release/greeting.wasm"}
    out = work / "js-greeting.wasm"
    run([js, "--wit", ROOT / "wit", "--world-name", "qa-rule", "--disable", "stdio", "random", "clocks", "http", "fetch-event",
         "--out", out, ROOT / "plugins/js-greeting/src/greeting.js"])
    modules["JavaScript (plugins/js-greeting)"] = out
    src = work / "py-src"
    shutil.copytree(ROOT / "plugins/python-greeting/src", src)
    out = work / "python-greeting.wasm"
    run([py, "-d", ROOT / "wit", "-w", "qa-rule", "componentize", "-p", src, "greeting", "-o", out])
    modules["Python (plugins/python-greeting)"] = out
    for name, path in modules.items():
        if not path.is_file():
            sys.exit(f"{name}: no module at {path} (cargo build --release builds the Rust one)")
    return modules


def timed(cmd) -> float:
    started = time.perf_counter()
    run(cmd)
    return time.perf_counter() - started


def measure(callqa: Path, module: Path, cases: list, runs: int, work: Path) -> dict:
    cache = Path(tempfile.mkdtemp(dir=work))
    first_session = cases[0][1]
    load = [callqa, "rule", "run", module, "--session", first_session, "--json", "--cache-dir", cache]
    compile_s = timed(load)
    cached_s = statistics.median(timed(load) for _ in range(5))
    rows = []
    for label, session, params in cases:
        report = json.loads(run([callqa, "rule", "run", module, "--session", session, "--params", json.dumps(params), "--json", "--cache-dir", cache]).stdout)
        costs = report["costs"]
        verdict = (report.get("verdict") or {}).get("outcome") or report["error"]["code"]
        # The same case `runs` times in one process: every evaluation gets a
        # fresh instance, as in `callqa check`.
        cases_dir = Path(tempfile.mkdtemp(dir=work))
        for i in range(runs):
            case = {"name": f"run-{i:04}", "session": str(session), "params": params, "expect": {"outcome": verdict}}
            (cases_dir / f"run-{i:04}.json").write_text(json.dumps(case, ensure_ascii=False))
        out = run([callqa, "rule", "test", module, cases_dir, "--cache-dir", cache]).stdout
        micros = [int(line.rsplit(", ", 1)[1].split(" ")[0]) for line in out.splitlines() if line.startswith("ok ")]
        if len(micros) != runs:
            sys.exit(f"{module} on {label}: expected {runs} passing runs, got:\n{out}")
        rows.append({"session": label, "verdict": verdict, "median_us": statistics.median(micros[1:]),
                     "fuel": costs["fuel"]["used"], "fuel_limit": costs["fuel"]["limit"],
                     "memory": costs["memory_bytes"]["used"], "memory_limit": costs["memory_bytes"]["limit"]})
    return {"size": module.stat().st_size, "compile_s": compile_s, "cached_s": cached_s, "rows": rows}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=51, help="evaluations per session (default 51)")
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    parser.add_argument("--callqa", type=Path, default=target / "release/callqa")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        modules = build(work)
        cases = sessions(work)
        results = {name: measure(args.callqa, path, cases, args.runs, work) for name, path in modules.items()}
    print(f"{os.cpu_count()} cores; median of {args.runs - 1} fresh-instance evaluations per row\n")
    print("| rule | module size | first load (compile) | cached load |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['size'] / 1e6:.2f} MB | {r['compile_s']:.2f} s | {r['cached_s'] * 1000:.0f} ms |")
    print()
    print("| rule | session | verdict | median per evaluation | fuel | peak memory |")
    print("|---|---|---|---:|---:|---:|")
    for name, r in results.items():
        for row in r["rows"]:
            print(f"| {name.split(' ')[0]} | {row['session']} | {row['verdict']} | {row['median_us']:.0f} µs | "
                  f"{row['fuel'] / 1e6:.2f} M | {row['memory'] / 2**20:.1f} MiB |")


if __name__ == "__main__":
    main()
