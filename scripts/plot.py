#!/usr/bin/env python3
"""Figures from cpbench output (docs/outputs.md).

    scripts/plot.py RUN.csv [MORE.csv ...] [--hgrm FILE_OR_DIR ...] [--out DIR] [--svg]
    scripts/plot.py --compare BASE.csv NEW.csv [--out DIR] [--svg]

Writes into --out (default results/plots), per pattern:
  throughput_<pattern>.png  ops/s vs the swept knob, one line per backend:
                            median, band = min..max (95% CI of the median
                            from 6 repetitions on)
  latency_<pattern>.png     latency by percentile ("nines" axis), per backend,
                            from the .hgrm files if given, else from the CSV's
                            p50/p90/p99/p99.9/max (median over repetitions)
  backends_<pattern>.png    median ops/s per configuration and backend, error
                            bars min..max
and with --compare: compare.png, the change of median ops/s per configuration
(NEW vs BASE) with its range. SVG copies with --svg.
"""
# ---- launcher: matplotlib lives in Debian's python3, not necessarily ours ----
import os
import sys

try:
    import matplotlib  # noqa: F401
except ImportError:
    _sys_py = "/usr/bin/python3"
    if (os.environ.get("CPBENCH_PLOT_REEXEC") != "1" and os.path.exists(_sys_py)
            and os.path.realpath(sys.executable) != os.path.realpath(_sys_py)):
        os.environ["CPBENCH_PLOT_REEXEC"] = "1"
        os.execv(_sys_py, [_sys_py, os.path.abspath(__file__)] + sys.argv[1:])
    print("plot.py: matplotlib not found; install it with: apt-get install -y python3-matplotlib",
          file=sys.stderr)
    sys.exit(2)

import argparse
import csv
import glob
import math
import re
import statistics
from collections import OrderedDict, defaultdict

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402


def read_knobs():
    """The common knobs' CSV columns, in order, from runtime/knobs.def (the one list)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runtime", "knobs.def")
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        die("cannot read the knob list %s: %s" % (path, e.strerror))
    # X(ID, field, ...): the field is the CSV column (and the figures' label)
    knobs = re.findall(r"^\s*X\(\s*[A-Z0-9_]+\s*,\s*([a-z0-9_]+)\s*,", text, re.M)
    if not knobs:
        die("no knobs found in %s" % path)
    return knobs



# The impls' order and colours come from the data, not from a list of the
# backends: the order in which they first appear (cpbench writes rows in
# --impl order, that of `cpbench --list`), go (the Go reference, docs/go.md)
# last; the colours a fixed cycle in that order, go always cyan.
IMPL_SEEN = []
CYCLE = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]


def note_impl(n):
    if n != "go" and n not in IMPL_SEEN:
        IMPL_SEEN.append(n)


def impl_color(n):
    if n == "go":
        return "tab:cyan"
    note_impl(n)
    return CYCLE[IMPL_SEEN.index(n) % len(CYCLE)]


def die(msg):
    print("plot.py: " + msg, file=sys.stderr)
    sys.exit(2)


KNOBS = read_knobs()  # the x axis prefers them in this order


def si(v, unit=""):
    for f, s in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= f:
            return "%.3g%s%s" % (v / f, s, unit)
    return "%.3g%s" % (v, unit)


def ns_label(v):
    for f, s in ((1e9, "s"), (1e6, "ms"), (1e3, "us")):
        if v >= f:
            return "%.3g%s" % (v / f, s)
    return "%.3gns" % v


# ---- reading -------------------------------------------------------------

def read_csvs(paths):
    rows = []
    for p in paths:
        try:
            with open(p, newline="") as f:
                for r in csv.DictReader(f):
                    r["_file"] = p
                    note_impl(r.get("impl") or "")
                    rows.append(r)
        except OSError as e:
            die("cannot read %s: %s" % (p, e.strerror))
    if not rows:
        die("no rows in %s" % ", ".join(paths))
    missing = [c for c in ("pattern", "impl", "ops_per_sec", "status") if c not in rows[0]]
    if missing:
        die("%s is not a cpbench CSV (no column %s; see docs/csv.md)" % (paths[0], missing[0]))
    bad = [r for r in rows if r.get("status") != "OK"]
    if bad:
        print("plot.py: leaving out %d FAILed repetition(s)" % len(bad), file=sys.stderr)
    return [r for r in rows if r.get("status") == "OK"]


def config_key(r, knobs):
    return tuple(r.get(k, "") for k in knobs) + (r.get("params", ""),)


def group(rows):
    """(pattern, impl, config) -> list of rows, in first-seen order."""
    g = OrderedDict()
    for r in rows:
        g.setdefault((r["pattern"], r["impl"], config_key(r, KNOBS)), []).append(r)
    return g


def varying(rows, knobs):
    return [k for k in knobs if len({r.get(k, "") for r in rows}) > 1]


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def impl_rank(n):
    if n == "go":
        return (1, 0, n)
    return (0, IMPL_SEEN.index(n) if n in IMPL_SEEN else len(IMPL_SEEN), n)


def impls_sorted(names):
    return sorted(names, key=impl_rank)


def median_ci(vals):
    """Median and its band: min..max, or the distribution-free 95% CI of the
    median (order statistics, binomial) from 6 values on."""
    v = sorted(vals)
    n = len(v)
    med = statistics.median(v)
    if n < 6:
        return med, v[0], v[-1], "min..max"
    # largest j with P(X_(j) <= median <= X_(n-j+1)) >= 0.95
    j = 1
    for cand in range(1, n // 2 + 1):
        cover = sum(math.comb(n, i) for i in range(cand, n - cand + 1)) / 2.0 ** n
        if cover >= 0.95:
            j = cand
    return med, v[j - 1], v[n - j], "95% CI of the median"


def footnote(fig, rows, extra=""):
    metas = OrderedDict()
    for r in rows:
        m = "%s cpus | %s | %s | rev %s" % (r.get("cpus", "?"), r.get("kernel", "?"), r.get("compiler", "?"),
                                            r.get("git_rev", "?"))
        metas.setdefault(m, None)
    text = "; ".join(metas)
    if extra:
        text = extra + "  " + text
    fig.text(0.01, 0.01, text, fontsize=7, color="0.35", ha="left", va="bottom", wrap=True)


def save(fig, out, name, svg):
    path = os.path.join(out, name + ".png")
    fig.savefig(path, dpi=90, bbox_inches="tight")  # nothing clipped: long titles, labels
    if svg:
        fig.savefig(os.path.join(out, name + ".svg"), bbox_inches="tight")
    plt.close(fig)
    print(path)


def fixed_desc(rows, skip):
    parts = []
    for k in KNOBS:
        vals = {r.get(k, "") for r in rows}
        if k in skip or len(vals) != 1 or vals == {""}:
            continue
        v = next(iter(vals))
        if k == "work_ns" and v == "0":
            continue
        parts.append("%s=%s" % (k, si(float(v)) if k == "items" else v))
    return ", ".join(parts)


# ---- (a) throughput vs the swept knob -------------------------------------

def plot_throughput(rows, out, svg):
    by_pattern = OrderedDict()
    for r in rows:
        by_pattern.setdefault(r["pattern"], []).append(r)
    for pat, prs in by_pattern.items():
        var = varying(prs, KNOBS)
        pref = [k for k in KNOBS if k in var]
        xk = pref[0] if pref else None
        others = [k for k in var if k != xk]
        fig, ax = plt.subplots(figsize=(8, 5))
        lines = OrderedDict()
        for r in prs:
            lab = r["impl"] + "".join(" %s=%s" % (k, r.get(k, "")) for k in others)
            if r.get("params") and len({x.get("params") for x in prs}) > 1:
                lab += " " + r["params"]
            x = num(r.get(xk)) if xk else 0.0
            lines.setdefault((r["impl"], lab), defaultdict(list))[x].append(float(r["ops_per_sec"]))
        bandkinds = set()
        for (impl, lab), pts in sorted(lines.items(), key=lambda kv: (impl_rank(kv[0][0]), kv[0][1])):
            xs = sorted(pts)
            stats = [median_ci(pts[x]) for x in xs]
            bandkinds.update(s[3] for s in stats)
            color = impl_color(impl) if not others else None
            l, = ax.plot(xs, [s[0] for s in stats], marker="o", label=lab, color=color)
            ax.fill_between(xs, [s[1] for s in stats], [s[2] for s in stats], alpha=0.2, color=l.get_color())
        ax.set_ylabel("throughput (ops/s, median of repetitions)")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: si(v)))
        ax.set_ylim(bottom=0)
        if xk:
            ax.set_xlabel("%s (swept)" % xk)
            xsall = sorted({num(r.get(xk)) for r in prs})
            if len(xsall) > 2 and xsall[0] > 0 and xsall[-1] / xsall[0] >= 8:
                ax.set_xscale("log", base=2)
            ax.set_xticks(xsall)
            ax.set_xticklabels(["%g" % v for v in xsall])
        else:
            ax.set_xlabel("(no knob varies)")
        reps = max(len(v) for pts in lines.values() for v in pts.values())
        ax.set_title("%s: throughput vs %s (%s)\nband: %s; up to %d repetitions per point"
                     % (pat, xk or "-", fixed_desc(prs, set(var)) or "defaults", " / ".join(sorted(bandkinds)),
                        reps), fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.subplots_adjust(bottom=0.16)
        footnote(fig, prs)
        save(fig, out, "throughput_" + pat, svg)


# ---- (b) latency percentiles ----------------------------------------------

CSV_MAX_X = 3.6
NINES_TICKS = [(0, "0%"), (1, "90%"), (2, "99%"), (3, "99.9%"), (4, "99.99%"), (5, "99.999%"), (6, "99.9999%")]


def read_hgrm(path):
    """[(nines, value_ns)] from an HdrHistogram classic percentile file, and
    the total count; nines = log10(1/(1-percentile))."""
    pts, total = [], 0
    with open(path) as f:
        for line in f:
            parts = line.split()
            if line.startswith("#["):
                m = re.search(r"Total count\s*=\s*(\d+)", line)
                if m:
                    total = int(m.group(1))
                continue
            if len(parts) < 3 or parts[0] == "Value":
                continue
            try:
                value, pct = float(parts[0]), float(parts[1])
            except ValueError:
                continue
            inv = parts[3] if len(parts) > 3 else "inf"
            if inv in ("inf", "Infinity") or pct >= 1.0:
                continue            # the 100% row: off the nines axis
            inv_v = float(inv) if float(inv) > 0 else 1.0 / (1.0 - pct)
            pts.append((math.log10(max(inv_v, 1.0)), value))
    return pts, total


def hgrm_files(args):
    files = []
    for a in args:
        if os.path.isdir(a):
            files += sorted(glob.glob(os.path.join(a, "*.hgrm")))
        else:
            files.append(a)
    return files


def nines_axis(ax, xmax):
    ticks = [t for t in NINES_TICKS if t[0] <= max(xmax, 2) + 0.01]
    ax.set_xticks([t[0] for t in ticks])
    ax.set_xticklabels([t[1] for t in ticks])
    ax.set_xlim(0, max(xmax, 2) * 1.02)
    ax.set_xlabel("percentile (log-scaled \"nines\" axis, as HdrHistogram's plotter)")


def plot_latency(rows, hgrms, out, svg):
    by_pattern = OrderedDict()
    if hgrms:
        for path in hgrm_files(hgrms):
            base = os.path.basename(path)[:-len(".hgrm")] if path.endswith(".hgrm") else os.path.basename(path)
            parts = base.split("_", 2)
            pat, impl, slug = (parts + ["?", "?", "?"])[:3] if len(parts) >= 2 else (base, "?", "")
            pts, total = read_hgrm(path)
            if pts:
                by_pattern.setdefault(pat, OrderedDict()).setdefault(slug, []).append((impl, pts, total))
        source = ".hgrm files: all measured repetitions merged"
    else:
        for (pat, impl, cfg), rs in group(rows).items():
            rs = [r for r in rs if r.get("p50_ns")]
            if not rs:
                continue
            pts = []
            for col, x in (("p50_ns", math.log10(2)), ("p90_ns", 1), ("p99_ns", 2), ("p999_ns", 3)):
                pts.append((x, statistics.median(float(r[col]) for r in rs)))
            total = statistics.median(int(r.get("lat_count") or 0) for r in rs)
            maxv = statistics.median(float(r["max_ns"]) for r in rs)
            pts.append((CSV_MAX_X, maxv))      # drawn at a "max" tick past 99.9%
            slug = " ".join("%s=%s" % (k, v) for k, v in zip(KNOBS, cfg)
                            if v and k != "items" and not (k == "work_ns" and v == "0"))
            by_pattern.setdefault(pat, OrderedDict()).setdefault(slug, []).append((impl, pts, total))
        source = "CSV percentiles p50/p90/p99/p99.9/max, median over repetitions"
    if not by_pattern:
        print("plot.py: no latency data (run with --lat-sample > 0)", file=sys.stderr)
        return
    for pat, cfgs in by_pattern.items():
        n = len(cfgs)
        cols = min(n, 3)
        nrows = (n + cols - 1) // cols
        fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols + 1, 3.6 * nrows + 1.2), squeeze=False,
                                 sharey=True)
        xmax = 0
        for i, (slug, series) in enumerate(cfgs.items()):
            ax = axes[i // cols][i % cols]
            for impl, pts, total in sorted(series, key=lambda s: impl_rank(s[0])):
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label="%s (n=%s)" % (impl, si(total)),
                        color=impl_color(impl), marker="" if hgrms else "o", lw=1.5)
                xmax = max(xmax, max(p[0] for p in pts))
            ax.set_title(slug.replace("_", " ").replace("-", "=") if hgrms else slug, fontsize=9)
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: ns_label(v)))
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        for i in range(n):
            ax = axes[i // cols][i % cols]
            nines_axis(ax, xmax)
            if not hgrms:
                ax.set_xticks([0, 1, 2, 3, CSV_MAX_X])
                ax.set_xticklabels(["0%", "90%", "99%", "99.9%", "max"])
                ax.set_xlim(0, CSV_MAX_X + 0.1)
            ax.set_xlabel("percentile" if nrows * cols > 1 else ax.get_xlabel(), fontsize=8)
            ax.tick_params(labelsize=7)
            if i % cols == 0:
                ax.set_ylabel("latency (ns, log scale)")
        for i in range(n, nrows * cols):
            axes[i // cols][i % cols].set_visible(False)
        fig.suptitle("%s: latency by percentile per backend (%s)" % (pat, source), fontsize=10)
        fig.tight_layout(rect=(0, 0.05, 1, 0.95))
        footnote(fig, [r for r in rows if r["pattern"] == pat] or rows, "" if not hgrms else "x: log10(1/(1-p)).")
        save(fig, out, "latency_" + pat, svg)


# ---- (c) backends side by side ---------------------------------------------

def plot_backends(rows, out, svg):
    by_pattern = OrderedDict()
    for r in rows:
        by_pattern.setdefault(r["pattern"], []).append(r)
    for pat, prs in by_pattern.items():
        var = varying(prs, KNOBS) + (["params"] if len({r.get("params") for r in prs}) > 1 else [])
        cfgs = list(OrderedDict.fromkeys(tuple(r.get(k, "") for k in var) for r in prs))
        impls = impls_sorted({r["impl"] for r in prs})
        vals = defaultdict(list)
        for r in prs:
            vals[(tuple(r.get(k, "") for k in var), r["impl"])].append(float(r["ops_per_sec"]))
        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(cfgs) * len(impls) / 2 + 3), 5))
        w = 0.8 / len(impls)
        for j, impl in enumerate(impls):
            xs, meds, lo, hi = [], [], [], []
            for i, c in enumerate(cfgs):
                v = vals.get((c, impl))
                if not v:
                    continue
                med, a, b, _ = median_ci(v)
                xs.append(i + (j - (len(impls) - 1) / 2) * w)
                meds.append(med)
                lo.append(med - a)
                hi.append(b - med)
            ax.bar(xs, meds, w, yerr=[lo, hi], capsize=3, label=impl, color=impl_color(impl))
        ax.set_xticks(range(len(cfgs)))
        ax.set_xticklabels(["\n".join("%s=%s" % (k, v) for k, v in zip(var, c)) or "defaults" for c in cfgs],
                           fontsize=8)
        ax.set_ylabel("throughput (ops/s, median of repetitions)")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: si(v)))
        reps = max(len(v) for v in vals.values())
        ax.set_title("%s: throughput per backend (%s)\nbar: median of up to %d repetitions; error bar: min..max\n"
                     "(95%% CI of the median from 6 repetitions on)"
                     % (pat, fixed_desc(prs, set(var)) or "defaults", reps), fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout(rect=(0, 0.05, 1, 1))
        footnote(fig, prs)
        save(fig, out, "backends_" + pat, svg)


# ---- (d) BASE vs NEW ---------------------------------------------------------

def plot_compare(base_path, new_path, out, svg):
    base, new = group(read_csvs([base_path])), group(read_csvs([new_path]))
    keys = [k for k in base if k in new]
    if not keys:
        die("%s and %s share no configuration (pattern, impl and knobs must match)" % (base_path, new_path))
    labels, chg, lo, hi = [], [], [], []
    allrows = []
    var = varying([r for k in keys for r in base[k] + new[k]], KNOBS)
    for k in keys:
        b = [float(r["ops_per_sec"]) for r in base[k]]
        n = [float(r["ops_per_sec"]) for r in new[k]]
        allrows += base[k][:1] + new[k][:1]
        mb, mn = statistics.median(b), statistics.median(n)
        c = (mn / mb - 1) * 100 if mb > 0 else 0.0
        # the range: the worst and best pairing of the two runs' repetitions
        rlo = (min(n) / max(b) - 1) * 100 if max(b) > 0 else 0.0
        rhi = (max(n) / min(b) - 1) * 100 if min(b) > 0 else 0.0
        pat, impl, cfg = k
        kv = dict(zip(KNOBS, cfg))
        labels.append("%s %s %s" % (pat, impl, " ".join("%s=%s" % (x, kv[x]) for x in var if kv.get(x))))
        chg.append(c)
        lo.append(c - rlo)
        hi.append(rhi - c)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.35 * len(keys)))
    ys = list(range(len(keys)))[::-1]
    ax.barh(ys, chg, xerr=[lo, hi], capsize=3, color=["tab:green" if c >= 0 else "tab:red" for c in chg])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel("change of median throughput, NEW vs BASE (%); error bar: min..max over repetition pairs")
    ax.set_title("throughput change: %s -> %s" % (os.path.basename(base_path), os.path.basename(new_path)),
                 fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    footnote(fig, allrows, "BASE/NEW:")
    save(fig, out, "compare", svg)


def main():
    ap = argparse.ArgumentParser(description="Figures from cpbench CSV and .hgrm output (docs/outputs.md).")
    ap.add_argument("csv", nargs="*", help="cpbench --csv files")
    ap.add_argument("--hgrm", nargs="+", metavar="FILE_OR_DIR", help="cpbench --hgrm files or directories")
    ap.add_argument("--compare", nargs=2, metavar=("BASE.csv", "NEW.csv"), help="plot NEW's change vs BASE")
    ap.add_argument("--out", default="results/plots", help="output directory (default results/plots)")
    ap.add_argument("--svg", action="store_true", help="also write SVG")
    a = ap.parse_args()
    if not a.csv and not a.compare:
        ap.error("give at least one CSV file, or --compare BASE.csv NEW.csv")
    os.makedirs(a.out, exist_ok=True)
    if a.csv:
        rows = read_csvs(a.csv)
        if not rows:
            die("no OK rows to plot")
        plot_throughput(rows, a.out, a.svg)
        plot_latency(rows, a.hgrm, a.out, a.svg)
        plot_backends(rows, a.out, a.svg)
    if a.compare:
        plot_compare(a.compare[0], a.compare[1], a.out, a.svg)


if __name__ == "__main__":
    main()
