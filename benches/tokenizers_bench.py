#!/usr/bin/env python3
"""Helper of benches/tokenizers.sh (issue 10 item 4): corpus preparation, the gigatoken and Python
`tokenizers` measurements, the exactness check of utk's ids, and the report.

Subcommands (each prints one JSON object on stdout, except `report`):

  prepare   --data DIR --out FILE [--mb N]
      DIR/corpus/*.jsonl.zst decompressed in sorted order into one plain JSONL file (each file
      ending in a newline). With --mb, every corpus contributes its first whole lines up to the
      same fraction N / total MB of its bytes, so a capped corpus keeps the mix (a plain prefix
      would be all Brown corpus and Chinese fortunes).

  gigatoken --tokenizer FILE --corpus FILE --mode 1|par
      One measurement in a fresh process (gigatoken keeps a cache of encoded words for the life
      of the tokenizer, so a second pass in the same process is faster than any one-pass tool
      can be; the second pass is reported as well, as `warm_seconds`). The tokenizer is loaded
      (`gigatoken.Tokenizer(path)`, its own fastest API, not the `as_hf()` compatibility
      wrapper), one short sentence is encoded to start it up, then the timed call is
      `encode_files(JsonlFileSource([corpus]), parallel=...)`: gigatoken reads the JSONL itself.
      mode 1: parallel=False (encodes on the calling thread, RAYON_NUM_THREADS=1 as well);
      mode par: parallel=True on its process-global rayon pool (RAYON_NUM_THREADS, set by the
      caller, default all cores). Tokens are gigatoken's own count. A tokenizer it refuses gives
      {"error": ...}.

  python    --tokenizer FILE --corpus FILE --utk-prefix PREFIX [--threads N]
      Python `tokenizers`: Tokenizer.from_file, padding and truncation off, encode_special_tokens
      = True (text spelling a special token stays text, as in utk), encode_batch(batch,
      add_special_tokens=False) over batches of about 8 MiB of text; timed: the encode_batch
      calls only (JSON reading excluded). Then every document's ids are compared with utk's
      Megatron PREFIX.bin/.idx (one sequence per document, utk's EOD appended: checked, then
      stripped). Reports the number of differing documents and the first difference.

  report    RESULTS.tsv META.json
      The markdown table (stdout).
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time


def cmd_prepare(a):
    files = sorted(glob.glob(os.path.join(a.data, "corpus", "*.jsonl.zst")))
    if not files:
        sys.exit(f"no {a.data}/corpus/*.jsonl.zst")
    blobs = []
    for f in files:
        b = subprocess.run(["zstd", "-dcq", f], check=True, stdout=subprocess.PIPE).stdout
        if b and not b.endswith(b"\n"):
            b += b"\n"
        blobs.append((os.path.basename(f), b))
    total = sum(len(b) for _, b in blobs)
    frac = 1.0 if not a.mb else min(1.0, a.mb * 1e6 / total)
    parts = {}
    with open(a.out + ".tmp", "wb") as out:
        for name, b in blobs:
            if frac < 1.0:
                cut = int(len(b) * frac)
                nl = b.rfind(b"\n", 0, cut + 1)
                b = b[: nl + 1] if nl >= 0 else b""
            out.write(b)
            parts[name] = {"bytes": len(b), "lines": b.count(b"\n")}
    os.replace(a.out + ".tmp", a.out)
    print(json.dumps({"bytes": sum(p["bytes"] for p in parts.values()),
                      "lines": sum(p["lines"] for p in parts.values()),
                      "fraction": frac, "parts": parts}))


def cmd_gigatoken(a):
    if a.mode == "1":
        os.environ["RAYON_NUM_THREADS"] = "1"
    par = a.mode == "par"
    import gigatoken as gt
    import awkward as ak

    res = {"mode": a.mode, "parallel": par, "version": gt.__dict__.get("__version__")}
    try:
        from importlib.metadata import version
        res["version"] = version("gigatoken")
    except Exception:
        pass
    t = time.perf_counter()
    try:
        tok = gt.Tokenizer(a.tokenizer)
        res["backend"] = type(tok.backend).__name__
        res["load_seconds"] = time.perf_counter() - t
        tok.encode_batch(["The quick brown fox jumps over the lazy dog. 1234 你好"], parallel=par)
    except Exception as e:  # noqa: BLE001 - any refusal is a result
        res["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0]}"
        print(json.dumps(res))
        return
    src = gt.JsonlFileSource([a.corpus], field=a.text_key)
    t = time.perf_counter()
    arr = tok.encode_files(src, parallel=par)
    res["seconds"] = time.perf_counter() - t
    counts = ak.num(arr)
    res["documents"] = int(len(counts))
    res["tokens"] = int(ak.sum(counts))
    del arr, counts
    src = gt.JsonlFileSource([a.corpus], field=a.text_key)
    t = time.perf_counter()
    tok.encode_files(src, parallel=par)
    res["warm_seconds"] = time.perf_counter() - t
    print(json.dumps(res))


def read_megatron(prefix):
    import numpy as np

    with open(prefix + ".idx", "rb") as f:
        head = f.read(9 + 8 + 1 + 8 + 8)
    if head[:9] != b"MMIDIDX\x00\x00":
        sys.exit(f"{prefix}.idx: not a Megatron index")
    code = head[17]
    n = int.from_bytes(head[18:26], "little")
    dtype = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64,
             7: np.float32, 8: np.uint16}[code]
    off = len(head)
    sizes = np.memmap(prefix + ".idx", dtype=np.int32, mode="r", offset=off, shape=(n,))
    ptrs = np.memmap(prefix + ".idx", dtype=np.int64, mode="r", offset=off + 4 * n, shape=(n,))
    data = np.memmap(prefix + ".bin", dtype=dtype, mode="r")
    item = np.dtype(dtype).itemsize
    return [data[p // item: p // item + s] for p, s in zip(ptrs.tolist(), sizes.tolist())]


def cmd_python(a):
    os.environ["RAYON_NUM_THREADS"] = str(a.threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    import numpy as np
    import tokenizers
    from tokenizers import Tokenizer

    res = {"version": tokenizers.__version__, "threads": a.threads}
    tok = Tokenizer.from_file(a.tokenizer)
    tok.no_padding()
    tok.no_truncation()
    tok.encode_special_tokens = True
    docs = []
    with open(a.corpus, "rb") as f:
        for line in f:
            if line.strip():
                docs.append(json.loads(line)[a.text_key])
    meta = json.load(open(a.utk_prefix + ".json"))
    eod = meta["eod"]["id"]
    utk = read_megatron(a.utk_prefix)
    res["documents"] = len(docs)
    res["utk_documents"] = len(utk)
    res["utk_eod"] = eod
    seconds, tokens, differ, missing_eod, first = 0.0, 0, 0, 0, None
    i = 0
    while i < len(docs):
        j, size = i, 0
        while j < len(docs) and (size < a.batch_bytes or j == i):
            size += len(docs[j])
            j += 1
        t = time.perf_counter()
        encs = tok.encode_batch(docs[i:j], add_special_tokens=False)
        seconds += time.perf_counter() - t
        for k, e in enumerate(encs, start=i):
            ids = np.asarray(e.ids, dtype=np.int64)
            tokens += len(ids)
            if k >= len(utk):
                differ += 1
                first = first or {"doc": k, "reason": "utk has fewer documents"}
                continue
            u = np.asarray(utk[k], dtype=np.int64)
            if len(u) == 0 or u[-1] != eod:
                missing_eod += 1
            else:
                u = u[:-1]
            if len(u) != len(ids) or not np.array_equal(u, ids):
                differ += 1
                if first is None:
                    m = min(len(u), len(ids))
                    neq = np.nonzero(u[:m] != ids[:m])[0]
                    p = int(neq[0]) if len(neq) else m
                    lo = max(0, p - 3)
                    first = {"doc": k, "position": p, "utk_len": int(len(u)),
                             "python_len": int(len(ids)),
                             "utk_ids": u[lo:p + 5].tolist(), "python_ids": ids[lo:p + 5].tolist(),
                             "python_tokens": e.tokens[lo:p + 5],
                             "text_near": (docs[k][e.offsets[p][0] - 20: e.offsets[p][1] + 20]
                                           if p < len(ids) else docs[k][-40:])}
        i = j
    if len(utk) > len(docs):
        differ += len(utk) - len(docs)
        first = first or {"doc": len(docs), "reason": "utk has more documents"}
    res.update(seconds=seconds, tokens=tokens, differing_docs=differ, utk_missing_eod=missing_eod,
               first_difference=first)
    print(json.dumps(res, ensure_ascii=False))


def cmd_report(a):
    import csv

    rows = list(csv.DictReader(open(a.results), delimiter="\t"))
    meta = json.load(open(a.meta))
    order = meta["tokenizers"]

    def runs(tok, cfg):
        return [r for r in rows if r["tokenizer"] == tok and r["config"] == cfg]

    def best_rate(tok, cfg, key="seconds"):
        """(best M tokens/s, error text) over the runs of a configuration."""
        rs = runs(tok, cfg)
        ok = [r for r in rs if r["status"] == "ok" and float(r[key] or 0) > 0]
        if not ok:
            err = next((r["note"] for r in rs if r["note"]), "not run") if rs else "not run"
            return None, err
        return max(int(r["tokens"]) / float(r[key]) / 1e6 for r in ok), None

    def cell(v, err=None):
        if v is None:
            return err or "—"
        return f"{v:.2f}"

    def ratio(x, y):
        return f"{x / y:.2f}" if x is not None and y else "—"

    p = print
    others = sorted(float(r["others_cores"]) for r in rows if r["others_cores"])
    if others:
        p(f"Other processes used {others[0]:.2f}–{others[-1]:.2f} cores (median "
          f"{others[len(others) // 2]:.2f}) of the {os.cpu_count()} during the timed runs"
          + (" — **the machine was busy: absolute rates are low and noisy; ratios within one run "
             "are more reliable**." if others[len(others) // 2] > 0.3 else "."))
        p()
    p("| tokenizer | utk backend | utk augment M tok/s | (without the tokenizer cache) "
      "| utk encoder 1T / 2T | gigatoken 1T / best "
      "| Python tokenizers | utk augment ÷ gigatoken best | (without the cache) "
      "| utk encoder 1T ÷ gigatoken 1T | differing docs |")
    p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    details = []
    for tok in order:
        aug, aerr = best_rate(tok, "utk-augment-j2")
        cold, _ = best_rate(tok, "utk-augment-j2-cold")
        e1, e1err = best_rate(tok, "utk-tokenize-j1")
        e2, _ = best_rate(tok, "utk-tokenize-j2")
        g1, gerr = best_rate(tok, "gigatoken-1")
        gp, _ = best_rate(tok, "gigatoken-par")
        gbest = max([x for x in (g1, gp) if x is not None], default=None)
        py, pyerr = best_rate(tok, "python")
        backend = next((r["backend"] for r in rows if r["tokenizer"] == tok and r["backend"]), "?")
        pyrow = next((r for r in runs(tok, "python") if r["status"] == "ok"), None)
        if pyrow:
            x = json.loads(pyrow["note"])
            differ = str(x["differing_docs"])
            if x.get("utk_missing_eod"):
                differ += f" ({x['utk_missing_eod']} without EOD)"
            if x["differing_docs"]:
                details.append(f"- {tok}: first difference {json.dumps(x['first_difference'], ensure_ascii=False)}")
        else:
            differ = "not checked"
        if gerr and g1 is None and gp is None:
            gcell = "cannot load" if "load" in gerr.lower() or "unsupported" in gerr.lower() else gerr
            details.append(f"- {tok}: gigatoken: {gerr}")
        else:
            gcell = f"{cell(g1)} / {cell(gbest)}"
        if aerr and aug is None:
            details.append(f"- {tok}: utk augment: {aerr}")
        p(f"| {tok} | {backend} | {cell(aug, 'failed' if aerr else None)} | {cell(cold)} "
          f"| {cell(e1)} / {cell(e2)} | {gcell} | {cell(py, 'failed' if pyerr else None)} "
          f"| {ratio(aug, gbest)} | {ratio(cold, gbest)} | {ratio(e1, g1)} | {differ} |")
    p()
    p("The same utk runs by utk's own run time (its summary's `throughput` seconds, which leave out "
      "process start and loading the tokenizer, as gigatoken's seconds do):")
    p()
    p("| tokenizer | utk augment M tok/s | utk encoder 1T / 2T | utk augment ÷ gigatoken best "
      "| utk encoder 1T ÷ gigatoken 1T |")
    p("|---|---:|---:|---:|---:|")
    for tok in order:
        aug, _ = best_rate(tok, "utk-augment-j2", "run_s")
        e1, _ = best_rate(tok, "utk-tokenize-j1", "run_s")
        e2, _ = best_rate(tok, "utk-tokenize-j2", "run_s")
        g1, _ = best_rate(tok, "gigatoken-1")
        gp, _ = best_rate(tok, "gigatoken-par")
        gbest = max([x for x in (g1, gp) if x is not None], default=None)
        p(f"| {tok} | {cell(aug)} | {cell(e1)} / {cell(e2)} | {ratio(aug, gbest)} | {ratio(e1, g1)} |")
    p()
    p("gigatoken details (seconds of `encode_files` in a fresh process; \"warm\" = a second pass in "
      "the same process, after its word cache filled; load = `gigatoken.Tokenizer(path)`):")
    p()
    p("| tokenizer | backend | load s | tokens | = utk's tokens minus one EOD per document? "
      "| 1T s (warm) | par s (warm) | 1T warm M tok/s | par warm M tok/s |")
    p("|---|---|---:|---:|---|---:|---:|---:|---:|")
    for tok in order:
        g = [r for r in rows if r["tokenizer"] == tok and r["config"].startswith("gigatoken")
             and r["status"] == "ok"]
        if not g:
            continue
        b = json.loads(g[0]["note"])
        u = next((r for r in runs(tok, "utk-tokenize-j1") if r["status"] == "ok"), None)
        if u is None:
            same = "?"
        else:
            text_tokens = int(u["tokens"]) - b["documents"]
            same = "yes" if text_tokens == b["tokens"] else f"no: utk {text_tokens:,}"

        def best(cfg, key):
            v = [json.loads(r["note"])[key] for r in g if r["config"] == cfg]
            return min(v) if v else None

        def s(cfg):
            c, w = best(cfg, "seconds"), best(cfg, "warm_seconds")
            return "—" if c is None else f"{c:.2f} ({w:.2f})"

        def wr(cfg):
            w = best(cfg, "warm_seconds")
            return "—" if w is None else f"{b['tokens'] / w / 1e6:.1f}"
        p(f"| {tok} | {b.get('backend', '?')} | {b.get('load_seconds', 0):.2f} | {b['tokens']:,} | "
          f"{same} | {s('gigatoken-1')} | {s('gigatoken-par')} | {wr('gigatoken-1')} | "
          f"{wr('gigatoken-par')} |")
    if details:
        p()
        p("Notes:")
        p()
        for d in details:
            p(d)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("prepare")
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--mb", type=float, default=0)
    s = sub.add_parser("gigatoken")
    s.add_argument("--tokenizer", required=True)
    s.add_argument("--corpus", required=True)
    s.add_argument("--mode", choices=["1", "par"], required=True)
    s.add_argument("--text-key", default="text")
    s = sub.add_parser("python")
    s.add_argument("--tokenizer", required=True)
    s.add_argument("--corpus", required=True)
    s.add_argument("--utk-prefix", required=True)
    s.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    s.add_argument("--batch-bytes", type=int, default=8 << 20)
    s.add_argument("--text-key", default="text")
    s = sub.add_parser("report")
    s.add_argument("results")
    s.add_argument("meta")
    a = ap.parse_args()
    {"prepare": cmd_prepare, "gigatoken": cmd_gigatoken, "python": cmd_python,
     "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
