#!/usr/bin/env python3
"""Draws the soak benchmark's CSV (benches/soak.rs) as one SVG, and says of each series whether it
stayed flat.

    python3 bench/soak-plot.py [target/soak/soak.csv] [-o bench/soak.svg] [--summary bench/soak.md]

Panels: the server's RSS, job latency (p50 and p99, delivery to done), open file descriptors,
the database's size on disk, ack p99 and queued jobs, over time. The verdict compares quarters
of the run: a series is "flat" when the mean of its last quarter is within 1.2x of the mean of
its second quarter (the first quarter holds the warm-up: caches and pools filling). The slope is
a least-squares line over the whole run, per hour. Both leave out the samples taken after the
load stopped (`sending` = 0), while the queue drained. No plotting library: the SVG is written by
hand.
"""

import argparse
import csv
import math
import os
import sys
from html import escape

FLAT = 1.2

# (column, label, unit, scale)
PANELS = [
    ([("rss_kib", "RSS")], "server RSS", "MiB", 1 / 1024),
    ([("job_p50_ms", "p50"), ("job_p99_ms", "p99")], "job latency, delivery to done", "ms", 1),
    ([("fds", "open fds")], "open file descriptors", "", 1),
    ([("db_bytes", "database")], "database on disk (incl. WAL)", "MiB", 1 / (1 << 20)),
    ([("ack_p99_ms", "ack p99")], "delivery acknowledgement p99", "ms", 1),
    ([("queued", "queued"), ("running", "running")], "jobs waiting / running", "", 1),
]
VERDICT = [
    ("rss_kib", "RSS", "MiB", 1 / 1024),
    ("fds", "open fds", "", 1),
    ("db_bytes", "database size", "MiB", 1 / (1 << 20)),
    ("job_p50_ms", "job latency p50", "ms", 1),
    ("job_p99_ms", "job latency p99", "ms", 1),
    ("ack_p99_ms", "ack p99", "ms", 1),
]
COLOURS = ["#1f77b4", "#d62728", "#2ca02c"]


def read(path):
    comments, rows = [], []
    with open(path) as f:
        lines = []
        for line in f:
            if line.startswith("#"):
                comments.append(line[1:].strip())
            else:
                lines.append(line)
    for row in csv.DictReader(lines):
        parsed = {}
        for key, value in row.items():
            try:
                parsed[key] = float(value)
            except (TypeError, ValueError):
                parsed[key] = math.nan
        rows.append(parsed)
    return comments, rows


def finite(values):
    return [v for v in values if not math.isnan(v)]


def mean(values):
    values = finite(values)
    return sum(values) / len(values) if values else math.nan


def quarters(values):
    n = len(values)
    return [values[n * i // 4 : n * (i + 1) // 4] for i in range(4)]


def slope_per_hour(ts, values):
    pairs = [(t, v) for t, v in zip(ts, values) if not math.isnan(v)]
    if len(pairs) < 2:
        return math.nan
    mt = sum(t for t, _ in pairs) / len(pairs)
    mv = sum(v for _, v in pairs) / len(pairs)
    var = sum((t - mt) ** 2 for t, _ in pairs)
    if var == 0:
        return math.nan
    return sum((t - mt) * (v - mv) for t, v in pairs) / var * 3600


def verdicts(rows):
    ts = [r["t_s"] for r in rows]
    out = []
    for column, label, unit, scale in VERDICT:
        values = [r.get(column, math.nan) * scale for r in rows]
        q = [mean(part) for part in quarters(values)]
        ratio = q[3] / q[1] if q[1] else math.nan
        flat = not math.isnan(ratio) and ratio <= FLAT
        out.append(
            {
                "label": label,
                "unit": unit,
                "q": q,
                "ratio_last_vs_second": ratio,
                "ratio_last_vs_first": q[3] / q[0] if q[0] else math.nan,
                "slope_per_hour": slope_per_hour(ts, values),
                "flat": flat,
            }
        )
    return out


def fmt(v):
    if math.isnan(v):
        return "n/a"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def verdict_line(v):
    unit = f" {v['unit']}" if v["unit"] else ""
    word = "flat" if v["flat"] else "GROWS"
    return (
        f"{v['label']}: {word} — quarters {' / '.join(fmt(x) for x in v['q'])}{unit}; "
        f"last/second {fmt(v['ratio_last_vs_second'])}x, last/first {fmt(v['ratio_last_vs_first'])}x; "
        f"slope {fmt(v['slope_per_hour'])}{unit}/h"
    )


def panel(x0, y0, w, h, rows, series, title, unit, scale):
    ts = [r["t_s"] / 60 for r in rows]
    all_values = finite([r.get(c, math.nan) * scale for c, _ in series for r in rows])
    top = max(all_values) if all_values else 1
    top = top * 1.1 if top > 0 else 1
    tmax = max(ts) if ts else 1
    parts = [
        f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>',
        f'<text x="{x0}" y="{y0 - 6}" font-size="13" font-weight="bold">{escape(title)}'
        f'{" (" + unit + ")" if unit else ""}</text>',
    ]
    for i in range(5):
        value = top * i / 4
        y = y0 + h - h * i / 4
        parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{x0 - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{fmt(value)}</text>')
    for i in range(7):
        t = tmax * i / 6
        x = x0 + w * i / 6
        parts.append(f'<text x="{x:.1f}" y="{y0 + h + 14}" font-size="10" text-anchor="middle">{t:.0f}</text>')
    parts.append(f'<text x="{x0 + w}" y="{y0 + h + 26}" font-size="10" text-anchor="end">minutes</text>')
    for k, (column, label) in enumerate(series):
        points = []
        for t, r in zip(ts, rows):
            v = r.get(column, math.nan) * scale
            if math.isnan(v):
                continue
            x = x0 + (w * t / tmax if tmax else 0)
            y = y0 + h - h * v / top
            points.append(f"{x:.1f},{y:.1f}")
        colour = COLOURS[k % len(COLOURS)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(points)}"/>')
        parts.append(
            f'<text x="{x0 + w - 4}" y="{y0 + 14 + 13 * k}" font-size="11" text-anchor="end" fill="{colour}">'
            f"{escape(label)}</text>"
        )
    return parts


def svg(comments, rows, verdict):
    cols, pw, ph, margin, gap = 2, 440, 180, 60, 70
    panel_rows = math.ceil(len(PANELS) / cols)
    header = 30 + 16 * len(comments)
    body_h = panel_rows * (ph + gap)
    footer = 20 + 16 * len(verdict)
    width = margin + cols * (pw + margin)
    height = header + body_h + footer
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        '<text x="20" y="22" font-size="16" font-weight="bold">hotfix-lane soak</text>',
    ]
    for i, c in enumerate(comments):
        out.append(f'<text x="20" y="{40 + 16 * i}" font-size="11">{escape(c)}</text>')
    for i, (series, title, unit, scale) in enumerate(PANELS):
        x0 = margin + (i % cols) * (pw + margin)
        y0 = header + 20 + (i // cols) * (ph + gap)
        out.extend(panel(x0, y0, pw, ph, rows, series, title, unit, scale))
    y = header + body_h + 10
    for i, v in enumerate(verdict):
        colour = "#222" if v["flat"] else "#b00"
        out.append(
            f'<text x="20" y="{y + 16 * i}" font-size="11" fill="{colour}">{escape(verdict_line(v))}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", nargs="?", default="target/soak/soak.csv")
    parser.add_argument("-o", "--output", default=None, help="the SVG (default: beside the CSV, soak.svg)")
    parser.add_argument("--summary", default=None, help="also write the verdict as Markdown here")
    args = parser.parse_args()
    comments, rows = read(args.csv)
    if len(rows) < 4:
        sys.exit(f"{args.csv}: {len(rows)} samples, need at least 4")
    # The verdict is about the steady load; the rows after it (the queue draining) are drawn only.
    loaded = [r for r in rows if r.get("sending", 1) != 0] or rows
    verdict = verdicts(loaded)
    output = args.output or os.path.join(os.path.dirname(args.csv) or ".", "soak.svg")
    with open(output, "w") as f:
        f.write(svg(comments, rows, verdict))
    lines = [verdict_line(v) for v in verdict]
    for line in lines:
        print(line)
    print(f"wrote {output}")
    if args.summary:
        last = rows[-1]
        with open(args.summary, "w") as f:
            for c in comments:
                f.write(f"{c}\n\n")
            f.write(f"{len(rows)} samples over {last['t_s']:.0f} s; {last['merges']:.0f} merges; ")
            f.write(f"{last['dead']:.0f} dead jobs; {last['warnings']:.0f} warnings, {last['errors']:.0f} errors logged.\n\n")
            f.write("| series | Q1 | Q2 | Q3 | Q4 | Q4/Q2 | Q4/Q1 | slope per hour | verdict |\n")
            f.write("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
            for v in verdict:
                unit = f" {v['unit']}" if v["unit"] else ""
                f.write(
                    f"| {v['label']}{' (' + v['unit'] + ')' if v['unit'] else ''} | "
                    + " | ".join(fmt(x) for x in v["q"])
                    + f" | {fmt(v['ratio_last_vs_second'])}x | {fmt(v['ratio_last_vs_first'])}x | "
                    f"{fmt(v['slope_per_hour'])}{unit} | {'flat' if v['flat'] else 'grows'} |\n"
                )
            loads = finite([r.get("load1", math.nan) for r in rows])
            if loads:
                f.write(f"\nMachine load average (1 min) during the run: min {fmt(min(loads))}, ")
                f.write(f"mean {fmt(mean(loads))}, max {fmt(max(loads))} — other builds shared the two cores.\n")
        print(f"wrote {args.summary}")


if __name__ == "__main__":
    main()
