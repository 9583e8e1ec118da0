#!/usr/bin/env python3
"""Markdown report of benches/augment.sh: `report.py results.tsv meta.json check.json`.

Best (lowest) wall time of the repetitions, highest peak RSS. Standard library only.
"""

import csv
import json
import sys
from collections import defaultdict

RSS_LIMIT_MIB = 1024
SPEEDUP_TARGET = 1.7
FLAT_TOLERANCE = 1.10  # "flat": 4x peak RSS within +10% of 1x peak RSS


def load(path):
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def main():
    rows = load(sys.argv[1])
    meta = json.load(open(sys.argv[2]))
    check = json.load(open(sys.argv[3])) if len(sys.argv) > 3 else {}

    dist = float(meta.get("disturbed_cores", 0.3))
    groups = defaultdict(list)
    failed = []
    for r in rows:
        if r["wall_s"] == "FAILED":
            failed.append(r["label"])
            continue
        for k in ("wall_s", "user_s", "sys_s", "others_cores", "load1"):
            r[k] = float(r[k])
        r["rss_mib"] = int(r["max_rss_kb"]) / 1024
        r["input_tokens"] = int(r["input_tokens"])
        groups[(r["tool"], r["corpus"], int(r["threads"]))].append(r)

    def best(key):
        runs = groups.get(key)
        if not runs:
            return None
        b = dict(min(runs, key=lambda r: r["wall_s"]))
        b["rss_max"] = max(r["rss_mib"] for r in runs)
        b["n"] = len(runs)
        b["walls"] = [f"{r['wall_s']:.1f}" + ("*" if r["others_cores"] > dist else "")
                      for r in runs]
        b["others_max"] = max(r["others_cores"] for r in runs)
        b["hashes"] = {r["output_sha256"] for r in runs}
        b["inputs"] = {r["input_tokens"] for r in runs}
        return b

    p = print
    p("# utk augment benchmark\n")
    p(f"- Commit: `{meta['commit']}`"
      + (f" (uncommitted changes in: `{meta['dirty']}`)" if meta["dirty"] else
         " (src/, Cargo.toml, Cargo.lock unmodified)"))
    p(f"- Machine: {meta['nproc']} CPUs ({meta['cpu']}), {meta['mem']} RAM, Linux {meta['kernel']}")
    p(f"- Toolchain: {meta['rustc']}" + (f"; baseline: {meta['py_versions']}" if meta["py_versions"] else ""))
    p(f"- Started {meta['started']}; `uptime` before: `{meta['uptime_before'].strip()}`; "
      f"after: `{meta['uptime_after'].strip()}`")
    p(f"- Corpora: 1x = {meta['corpora'].strip()} concatenated "
      f"({meta['c1_bytes'] / 1e6:.1f} MB as .jsonl.zst); 4x = the same four times "
      f"({meta['c4_bytes'] / 1e6:.1f} MB)")
    p("- Each configuration ran several times (the \"all runs\" column); the table shows the best "
      "(lowest) wall time, and the peak RSS is the maximum over all its runs. \"Others' CPU\" = CPU used by other processes "
      "during the best run, in cores (from /proc/stat minus the run's own user+sys); "
      f"runs marked * had others above {meta.get('disturbed_cores', 0.3)} cores (disturbed; "
      "such runs were retried once after waiting for quiet).\n")
    if failed:
        p(f"**FAILED runs: {', '.join(failed)}** (see logs/)\n")

    p("## utk augment (Qwen3 tokenizer, --seq-len 128k)\n")
    p("| corpus | threads | backend | input tokens | wall s (best) | all runs s | tokens/s "
      "| peak RSS MiB | inserted overhead % | others' CPU |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    for c in ("1x", "4x"):
        for t in (1, 2):
            b = best(("utk", c, t))
            if not b:
                continue
            ov = 100 * int(b["inserted_tokens"]) / b["input_tokens"]
            p(f"| {c} | {t} | {b.get('backend') or 'tokenizers'} | {b['input_tokens']:,} | "
              f"{b['wall_s']:.2f} | "
              f"{', '.join(b['walls'])} | "
              f"{b['input_tokens'] / b['wall_s'] / 1e6:.3f} M | {b['rss_max']:.0f} | {ov:.2f} "
              f"| {b['others_cores']:.2f} |")
    p()

    p("### Speedup, memory growth, determinism\n")
    p("| corpus | 1 thread s | 2 threads s | speedup 2 vs 1 | CPU use at 2 threads (cores) "
      "| same output bytes, all runs |")
    p("|---|---|---|---|---|---|")
    speedups, rss_all, flat = {}, [], {}
    for c in ("1x", "4x"):
        b1, b2 = best(("utk", c, 1)), best(("utk", c, 2))
        if not (b1 and b2):
            continue
        s = b1["wall_s"] / b2["wall_s"]
        speedups[c] = s
        cpu = (b2["user_s"] + b2["sys_s"]) / b2["wall_s"]
        same = len(b1["hashes"] | b2["hashes"]) == 1
        p(f"| {c} | {b1['wall_s']:.2f} | {b2['wall_s']:.2f} | {s:.2f}x | {cpu:.2f} | "
          f"{'yes' if same else 'NO: ' + ', '.join(sorted(b1['hashes'] | b2['hashes']))} |")
    p()
    pair, solo = best(("pair", "1x", 1)), best(("utk", "1x", 1))
    if pair and solo:
        ceil = 2 * solo["wall_s"] / pair["wall_s"]
        p(f"Hardware ceiling: two independent `--threads 1` runs on 1x at the same time took "
          f"{pair['wall_s']:.2f} s (runs: {', '.join(pair['walls'])}) against {solo['wall_s']:.2f} s "
          f"for one alone: **{ceil:.2f}x** the throughput of one run. This bounds the 2-thread "
          f"speedup when a 1-thread run keeps one core busy; this one used "
          f"{(solo['user_s'] + solo['sys_s']) / solo['wall_s']:.2f} cores (reader and writer "
          f"threads run beside the worker).\n")
    p("| threads | peak RSS 1x MiB | peak RSS 4x MiB | 4x / 1x |")
    p("|---|---|---|---|")
    for t in (1, 2):
        a, b = best(("utk", "1x", t)), best(("utk", "4x", t))
        if not (a and b):
            continue
        rss_all += [a["rss_max"], b["rss_max"]]
        flat[t] = b["rss_max"] / a["rss_max"]
        p(f"| {t} | {a['rss_max']:.0f} | {b['rss_max']:.0f} | {flat[t]:.2f} |")
    a1, a4 = best(("utk", "1x", 1)), best(("utk", "4x", 1))
    if a1 and a4:
        ok = a4["inputs"] == {4 * x for x in a1["inputs"]}
        p(f"\n4x input tokens = 4 x 1x input tokens: {'yes' if ok else 'NO'} "
          f"({sorted(a4['inputs'])} vs 4 x {sorted(a1['inputs'])})")
    p()

    p("## Targets\n")
    p("| target | measured | met? |")
    p("|---|---|---|")
    for c, s in speedups.items():
        p(f"| 2 threads >= {SPEEDUP_TARGET}x 1 thread ({c}) | {s:.2f}x | "
          f"{'yes' if s >= SPEEDUP_TARGET else '**no**'} |")
    if rss_all:
        m = max(rss_all)
        p(f"| peak RSS < 1 GiB | max {m:.0f} MiB | {'yes' if m < RSS_LIMIT_MIB else '**no**'} |")
    for t, f in flat.items():
        p(f"| peak RSS flat 1x -> 4x ({t} thread{'s' if t > 1 else ''}; flat = within "
          f"+{(FLAT_TOLERANCE - 1) * 100:.0f}%) | x{f:.2f} | "
          f"{'yes' if f <= FLAT_TOLERANCE else '**no**'} |")
    p()

    if meta.get("baseline"):
        p("## Baseline: Python tokenizers + numpy plain packing (1x corpus, 2 threads)\n")
        p("| tool | threads | input tokens | wall s (best) | all runs s | tokens/s | peak RSS MiB "
          "| CPU (cores) | others' CPU |")
        p("|---|---|---|---|---|---|---|---|---|")
        for name, key in (("utk augment (UtK)", ("utk", "1x", 2)),
                          ("utk augment --method plain", ("utk-plain", "1x", 2)),
                          ("Python baseline_python.py (plain)", ("python", "1x", 2))):
            b = best(key)
            if not b:
                continue
            cpu = (b["user_s"] + b["sys_s"]) / b["wall_s"]
            p(f"| {name} | {key[2]} | {b['input_tokens']:,} | {b['wall_s']:.2f} | "
              f"{', '.join(b['walls'])} | "
              f"{b['input_tokens'] / b['wall_s'] / 1e6:.3f} M | {b['rss_max']:.0f} | {cpu:.2f} "
              f"| {b['others_cores']:.2f} |")
        if check:
            match = (check.get("utk_input_tokens") == check.get("python_input_tokens")
                     and check.get("docs_with_different_counts") == 0)
            p(f"\nToken counts: utk input_tokens {check.get('utk_input_tokens'):,}, Python "
              f"{check.get('python_input_tokens'):,}; documents {check.get('utk_documents')} vs "
              f"{check.get('python_documents')}; documents whose counts differ: "
              f"{check.get('docs_with_different_counts')} -> **{'match' if match else 'MISMATCH'}**"
              + (f" (first: {check['first_different_doc']})" if "first_different_doc" in check else ""))
            p(f"Token ids: Python's packed stream vs utk --method plain tokens.bin, "
              f"{check.get('ids_compared'):,} ids compared: "
              f"**{'identical' if check.get('ids_identical') else 'DIFFERENT'}**"
              + (f" (first difference at id {check['first_different_id_at']})"
                 if "first_different_id_at" in check else ""))
        p()

    p("## Commands\n")
    p("```sh")
    p((f"UTK_ARGS='{meta['utk_args']}' " if meta.get("utk_args") else "")
      + f"REPEATS={meta['repeats']} REPEATS_4X={meta['repeats_4x']} "
      f"BASELINE={meta['baseline']} benches/augment.sh {meta['data']} {meta['out']}")
    p("# each timed run:")
    p(f"/usr/bin/time -v {meta['utk']} augment {meta['out']}/corpus/all{{1x,4x}}.jsonl.zst "
      f"--tokenizer {meta['tokenizer']} --seq-len 128k -o {meta['out']}/runs/LABEL --force "
      "--threads {1,2}" + (f" {meta['utk_args']}" if meta.get("utk_args") else ""))
    if meta.get("baseline"):
        p(f"/usr/bin/time -v {meta['utk']} augment {meta['out']}/corpus/all1x.jsonl.zst "
          f"--tokenizer {meta['tokenizer']} --seq-len 128k -o {meta['out']}/runs/LABEL --force "
          "--threads 2 --method plain" + (f" {meta['utk_args']}" if meta.get("utk_args") else ""))
        p(f"/usr/bin/time -v {meta['out']}/venv/bin/python benches/baseline_python.py "
          f"--tokenizer {meta['tokenizer']} --seq-len 131072 --threads 2 --out RUN.bin "
          f"--doc-tokens RUN.doctokens {meta['out']}/corpus/all1x.jsonl.zst")
    p("```")


if __name__ == "__main__":
    main()
