"""Campaigns: cases start .. start+n-1 of (format, seed) written, run in the session's worker
and classified (typed / ran / other / crash / hang / escape), counted per family, failures
kept and grouped (kind, exception type, where raised), each group's first case reduced to
the one mutation that fails the same way alone."""
import json
import os
import shutil
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .escapes import judge_escapes
from .generators import FAMILIES
from .seeds import ONNX_SEEDS, TFLITE_SEEDS
from .session import CASE_TIMEOUT, session

#: cases per format in the test suite (tests/test_*_fuzz.py); EDGERNN_FUZZ_CASES=N overrides
CI_CASES = {"onnx": 3000, "tflite": 1500}
#: the campaign seed of the test suite
CI_SEED = 2026
KINDS = ("typed", "ran", "other", "crash", "hang", "escape")
FAILURES = ("other", "crash", "hang", "escape")


def case_count(fmt):
    """Cases per format: ``CI_CASES``, or ``EDGERNN_FUZZ_CASES`` when set."""
    text = os.environ.get("EDGERNN_FUZZ_CASES", "")
    return int(text) if text else CI_CASES[fmt]


def write_case(ctx, mut):
    """Put the mutant and its files in place; returns the path to load."""
    shutil.rmtree(ctx.case, ignore_errors=True)
    ctx.case.mkdir()
    for p in ctx.cwd.iterdir():         # the worker's working directory: emptied, never removed
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    if ctx.outside.exists():
        ctx.outside.unlink()
    path = ctx.case / mut.name
    path.write_bytes(mut.data)
    for rel, data in mut.files.items():
        p = Path(os.path.normpath(ctx.case / rel))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    for name, target in mut.links.items():
        os.symlink(target, ctx.case / name)
    for name, data in mut.cwd_files.items():
        (ctx.cwd / name).write_bytes(data)
    return path


def submit_case(sess, mut, case_id):
    path = write_case(sess.ctx, mut)
    if sess.inotify is not None:
        sess.inotify.events()           # the harness's own writes
    root, case = os.path.realpath(sess.ctx.root), os.path.realpath(sess.ctx.case)
    sess.worker.submit({"op": "case", "id": case_id, "path": str(path), "via": mut.via,
                        "frames_seed": zlib.crc32(case_id.encode()), "watch": [root],
                        "allowed": [os.path.realpath(sess.cache)] + ([case] if mut.via == "path" else [])})


def case_result(sess, mut, timeout=CASE_TIMEOUT):
    return judge_escapes(sess.worker.result(timeout), mut, sess.ctx, sess.inotify)


def run_case(sess, mut, case_id, timeout=CASE_TIMEOUT):
    submit_case(sess, mut, case_id)
    return case_result(sess, mut, timeout)


@dataclass
class Result:
    fmt: str
    seed: int
    families: list
    counts: Counter = field(default_factory=Counter)
    by_family: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    seconds: float = 0.0
    warmup_seconds: float = 0.0
    worker_starts: int = 0
    compiles: int = 0
    nonfinite: int = 0

    @property
    def cases(self):
        return sum(self.counts.values())

    @property
    def anything_else(self):
        return sum(self.counts[k] for k in FAILURES)

    def figures(self):
        return {"format": self.fmt, "seed": self.seed, "families": self.families, "cases": self.cases,
                "typed": self.counts["typed"], "ran": self.counts["ran"], "anything_else": self.anything_else,
                **{k: self.counts[k] for k in FAILURES}, "ran_nonfinite": self.nonfinite,
                "by_family": {f: dict(c) for f, c in self.by_family.items()},
                "seconds": round(self.seconds, 1), "warmup_seconds": round(self.warmup_seconds, 1),
                "worker_starts": self.worker_starts, "compiles": self.compiles, "failure_groups": self.groups()}

    def groups(self):
        """Distinct failures: (kind, exception type, where raised), with a count and the first case."""
        out = {}
        for f in self.failures:
            key = _group_key(f)
            g = out.setdefault(key, {"kind": key[0], "type": key[1], "where": key[2], "count": 0, "first": f})
            g["count"] += 1
        return sorted(out.values(), key=lambda g: -g["count"])

    def summary(self):
        c = self.counts
        return (f"{self.fmt}: {self.cases} cases in {self.seconds:.0f} s: typed {c['typed']}, ran {c['ran']}, "
                + ", ".join(f"{k} {c[k]}" for k in FAILURES))

    def report(self, limit=20):
        """The summary and each distinct failure (the first ``limit``; None: all)."""
        lines = [self.summary()]
        groups = self.groups()
        for g in groups[:limit]:
            f = g["first"]
            lines.append(f"\n[{g['kind']}] x{g['count']}  {g['type']}  at {g['where'] or f.get('raised_at', '?')}")
            lines.append(f"  first: {self.fmt} seed {self.seed} case {f['case']} ({f['seed_file']}, {f['family']}): "
                         f"{f['what'][:300]}")
            if f.get("minimal"):
                lines.append(f"  fails alone: {f['minimal'][:300]}")
            lines.append(f"  message: {f.get('message', '')[:300]}")
            lines.append(f"  reproduce: python benchmarks/fuzz.py --format {self.fmt} --seed {self.seed} "
                         f"--case {f['case']}" + (f" --family {','.join(self.families)}" if self.families else ""))
            if f.get("saved"):
                lines.append(f"  saved: {f['saved']}")
        if limit is not None and len(groups) > limit:
            lines.append(f"\n... and {len(groups) - limit} more distinct failures")
        return "\n".join(lines)


def save_failure(sess, mut, reply, record):
    d = sess.failures / f"{mut.fmt}-seed{record['campaign_seed']}-case{record['case']}"
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(sess.ctx.case, d / "case", symlinks=True)
    if sess.ctx.outside.exists():
        shutil.copy(sess.ctx.outside, d / "outside.bin")
    if any(sess.ctx.cwd.iterdir()):
        shutil.copytree(sess.ctx.cwd, d / "cwd")
    (d / "failure.json").write_text(json.dumps({**record, "reply": reply}, indent=1, default=str))
    return str(d)


def warm_paths(fmt, sess):
    if fmt == "onnx":
        return [ONNX_SEEDS[0].path]
    if fmt == "tflite":
        return [TFLITE_SEEDS[0].path, TFLITE_SEEDS[3].path]
    return [sess.generator("ernn").seeds.scratch.parent / sess.generator("ernn").seeds.names[0]]


def _group_key(reply):
    return (reply["kind"], reply.get("type", ""), reply.get("where") or reply.get("raised_at", ""))


def run_campaign(fmt, cases, seed=CI_SEED, families=None, sess=None, start=0, minutes=None, progress=None,
                 timeout=CASE_TIMEOUT, log=None, minimize=True):
    """Cases start .. start+cases-1 of (fmt, seed), restricted to ``families`` when given;
    ``log``: a file to which one JSON line per case is appended (its mutation and outcome).
    ``minimize``: for the first case of each distinct failure made of several mutations, find
    one that fails the same way alone (its record's "minimal")."""
    sess = sess or session()
    gen = sess.generator(fmt)
    res = Result(fmt, seed, sorted(families) if families else [])
    t0 = time.perf_counter()
    starts0, compiles0 = sess.worker.starts, sess.worker.compiles
    firsts = {}                         # a distinct failure -> (its first record, its mutant)
    sess.worker.ensure(warm_paths(fmt, sess))
    # make the first mutants while the worker compiles (or maps) the checked engine
    ahead = [gen.make(seed, start + i, families) for i in range(min(cases, 2000))] \
        if sess.worker._pending_warmup else []
    tw = time.perf_counter()
    sess.worker.wait_warm()
    res.warmup_seconds = time.perf_counter() - tw
    mut = ahead[0] if ahead else gen.make(seed, start, families)
    for n in range(cases):
        i = start + n
        tc = time.perf_counter()
        submit_case(sess, mut, f"{fmt}-{seed}-{i}")
        # the next mutant is made while the worker loads and steps this one
        nxt = None if n + 1 >= cases else ahead[n + 1] if n + 1 < len(ahead) else gen.make(seed, i + 1, families)
        reply = case_result(sess, mut, timeout)
        kind = reply["kind"]
        if kind not in KINDS:
            raise RuntimeError(f"harness: unexpected worker reply {reply}")
        res.counts[kind] += 1
        res.by_family.setdefault(mut.family, Counter())[kind] += 1
        if log is not None:
            with open(log, "a") as f:
                f.write(json.dumps({"format": fmt, "seed": seed, "case": i, "seed_file": mut.seed,
                                    "family": mut.family, "what": mut.what, "kind": kind,
                                    "seconds": round(time.perf_counter() - tc, 4),
                                    **{k: reply.get(k) for k in ("type", "message", "where", "phase", "finite")}})
                        + "\n")
        if kind == "ran" and reply.get("finite") is False:
            res.nonfinite += 1
        if kind in FAILURES:
            record = {"kind": kind, "case": i, "campaign_seed": seed, "seed_file": mut.seed, "family": mut.family,
                      "what": mut.what, "via": mut.via, **{k: reply.get(k) for k in
                                                            ("type", "message", "where", "raised_at", "phase",
                                                             "traceback", "stderr") if reply.get(k)}}
            record["saved"] = save_failure(sess, mut, reply, record)
            res.failures.append(record)
            firsts.setdefault(_group_key(reply), (record, mut))
        if progress and (n + 1) % progress == 0:
            print(f"  {fmt} {n + 1}/{cases}  {dict(res.counts)}  {time.perf_counter() - t0:.0f} s", flush=True)
        if minutes is not None and time.perf_counter() - t0 > 60 * minutes:
            break
        mut = nxt
    if minimize:
        for key, (record, first) in firsts.items():
            for j, (what, single) in enumerate(gen.singles(first)):
                reply = run_case(sess, single, f"{fmt}-{seed}-{record['case']}-only{j}", timeout)
                if _group_key(reply) == key:
                    record["minimal"] = what
                    break
    res.seconds = time.perf_counter() - t0
    res.worker_starts = sess.worker.starts - starts0
    res.compiles = sess.worker.compiles - compiles0
    return res


def check_family(fmt, family):
    """The test suite's campaign of one mutation family (its share of :func:`case_count`):
    nothing but typed errors and runs; from 100 cases on, more than 20% typed errors (the
    mutants are not all harmless) and, but for byte mutations, more than 5% runs (nor all
    rejected)."""
    n = max(1, round(case_count(fmt) * FAMILIES[fmt][family]))
    res = run_campaign(fmt, n, families=[family])
    print(res.summary())
    assert res.anything_else == 0, res.report()
    if n < 100:
        return                          # too few cases for the shares below
    assert res.counts["typed"] > 0.2 * n, res.summary()
    if family != "bytes":
        assert res.counts["ran"] > 0.05 * n, res.summary()
