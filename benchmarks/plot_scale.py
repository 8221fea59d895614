"""Log-log plots of the growth figures of issue 14, with the growth rate of each series.

Reads ``benchmarks/scale_figures.json`` (the medians `bench_scale.py` and `bench_growth.py` measured, as
recorded in docs/scaling.md; one panel per top-level key) and writes ``docs/scale-growth.png``; prints, per series, the exponent k of the
least-squares fit ``value ∝ N^k`` on log-log axes and, where k is near 1, the cost per address.

    .venv/bin/python benchmarks/plot_scale.py [--figures benchmarks/scale_figures.json] [-o docs/scale-growth.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def growth(sizes: list[float], values: list[float]) -> tuple[float, float]:
    """(exponent k, coefficient c) of the least-squares fit value = c · N^k in log-log space."""
    k, log_c = np.polyfit(np.log(np.asarray(sizes, float)), np.log(np.asarray(values, float)), 1)
    return float(k), float(np.exp(log_c))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--figures", type=Path, default=ROOT / "benchmarks" / "scale_figures.json")
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "docs" / "scale-growth.png")
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(args.figures.read_text())
    titles = {"in_memory": "geocoder in one process (records in memory)",
              "database": "through PostGIS (what an API process meets)",
              "growth": "rest of the growth table (bench_growth.py)"}
    panels = [(key, titles.get(key, key)) for key in data if not key.startswith("_")]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5.5))
    for ax, (key, title) in zip(axes, panels, strict=True):
        all_sizes = data[key]["addresses"]
        for name, all_values in data[key]["series"].items():
            # null: not measured at that size, or measured by code too different to join the line (the JSON's _source)
            kept = [(n, v) for n, v in zip(all_sizes, all_values, strict=True) if v is not None]
            sizes, values = [n for n, _ in kept], [v for _, v in kept]
            k, _ = growth(sizes, values)
            if len(sizes) >= 3:  # the slope of the last step: where the curve bends
                k_last, _ = growth(sizes[-2:], values[-2:])
                label, bend = f"{name}: ∝ N^{k:.2f} (last step N^{k_last:.2f})", f", last step N^{k_last:.2f}"
            else:
                label, bend = f"{name}: ∝ N^{k:.2f}", ""
            ax.plot(sizes, values, marker="o", label=label)
            per = values[-1] / sizes[-1]
            print(f"{key:9} {name:34} exponent {k:5.2f}{bend}; at N={sizes[-1]:,}: {values[-1]:g} ({per:.3g} per address)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("standard addresses N")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7.5, loc="upper left")
    fig.suptitle("Shequ GIS scale (issue 14): measured medians, log-log; exponent k of value ∝ N^k")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
