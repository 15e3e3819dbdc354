"""The audit report as one self-contained HTML file: inline CSS, figures as data URIs, no
scripts and no links out, so it opens offline and can be archived or mailed as it is."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from typing import Any

from forgetflow.pipeline.lineage import threshold_text

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1b1f24;background:#fff;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;border-bottom:2px solid #e1e4e8;
padding-bottom:.3rem;margin-top:2rem}.sub{color:#57606a;margin-top:0}
table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.35rem .55rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:.8rem}.card{border:1px solid #d0d7de;border-radius:8px;
padding:.6rem .9rem;min-width:140px;background:#f6f8fa}.card b{display:block;font-size:1.35rem}
figure{margin:1rem 0;border:1px solid #d0d7de;border-radius:8px;padding:.5rem}
figure img{max-width:100%;height:auto;display:block}figcaption{color:#57606a;font-size:.85rem}
td.receipt{font-size:.8rem;word-break:break-all}
code{font-size:.85em;background:#f6f8fa;padding:0 .25em;border-radius:4px}
"""


class Markup(str):
    """An already-rendered cell."""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return "—" if value in (None, "") else str(value)


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            cls = ' class="num"' if i in numeric else ""
            cells.append(v if isinstance(v, Markup) else f"<td{cls}>{escape(_fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _receipt(receipt: dict[str, Any] | None) -> Markup:
    if not receipt:
        return Markup("<td>—</td>")
    items = "<br>".join(f"<b>{escape(str(k))}</b>: {escape(_fmt(v))}"
                        for k, v in sorted(receipt.items()))
    return Markup(f'<td class="receipt">{items}</td>')


def _verdict(passed: Any) -> Markup:
    ok = passed in (True, "passed", "done")
    text = {True: "passed", False: "FAILED"}.get(passed, str(passed))
    return Markup(f'<td class="{"pass" if ok else "fail"}">{escape(text)}</td>')


def _sections(r: dict[str, Any]) -> list[str]:
    m, tags = r["metrics"], r["tags"]
    cards = "".join(
        f'<div class="card">{escape(label)}<b id="{key}">{escape(_fmt(m.get(key)))}</b></div>'
        for key, label in (("test_acc", "test accuracy"),
                           ("forget_acc", "forget accuracy (all forget rows)"),
                           ("third_party_auc", "third-party AUC (all forget rows)"),
                           ("mia_efficacy", "MIA efficacy"), ("asr", "ASR")) if key in m)
    out = [f'<div class="cards"><div class="card">gate<b id="gate">'
           f'{escape(tags.get("gate") or "—")}</b></div>{cards}</div>']
    checks = r["gate"]["checks"]
    out.append("<h2>Gate: metrics against thresholds</h2><p>The gate reads each stage of a "
               "batch on its own (a forgotten class, a backdoor, the sample/subject rows); the "
               "cards above pool every forget row.</p>")
    if checks:
        out.append(_table(["check", "value", "threshold", "verdict", "note"],
                          [[c["check"], c["value"], threshold_text(c), _verdict(c["passed"]),
                            c.get("note", "")] for c in checks], {1, 2}))
    else:
        out.append("<p>No gate checks recorded (a base model is the gate's reference).</p>")
    if r["thresholds"]:
        out.append(_table(["threshold", "value"], sorted(r["thresholds"].items()), {1}))
    if r["gate"]["decisions"]:
        out.append(_table(["attempt", "method", "config", "seconds", "gate"], [
            [i + 1, d["method"], d["config"], d["seconds"], _verdict(d["gate"])]
            for i, d in enumerate(r["gate"]["decisions"])], {0, 3}))
    out.append("<h2>Requests and receipts</h2>")
    if r["requests"]:
        out.append(_table(["request", "kind", "selector", "status", "forgotten in", "receipt"], [
            [q["id"], q.get("kind"), q.get("payload"), _verdict(q.get("status")),
             f"v{q['in_version']}", _receipt(q.get("receipt"))] for q in r["requests"]], {0}))
    else:
        out.append("<p>No deletion request reached this version.</p>")
    out.append("<h2>Lineage back to the base model</h2>")
    out.append(_table(
        ["version", "aliases", "kind", "method", "gate", "data", "forget set", "sha256",
         "requests", "batch", "test acc"],
        [[f"v{c['version']}", ", ".join(c["aliases"]), c["tags"]["kind"], c["tags"]["method"],
          _verdict(c["tags"]["gate"]), f"{c['tags']['parent_data_version'] or '·'} → "
          f"{c['tags']['data_version']}", c["tags"]["forget_set_size"],
          (c["tags"]["forget_set_sha256"] or "")[:16], c["tags"]["deletion_request_ids"],
          c["tags"]["batch_id"], c["metrics"].get("test_acc")] for c in r["lineage"]], {10}))
    out.append("<h2>Data versions</h2>")
    out.append(_table(["version", "source", "rows per split", "excluded ids", "manifest sha256",
                       "batch", "requests"],
                      [[d["tag"], d["source"], d["rows"], d["excluded"],
                        d["manifest_sha256"][:16], d["batch_id"], d["request_ids"]]
                       for d in r["data_versions"]], {3}))
    out.append("<h2>All metrics of this version</h2>")
    out.append(_table(["metric", "value"], sorted(r["all_metrics"].items()), {1}))
    out.append("<h2>Figures</h2>")
    if not r["figures"]:
        out.append("<p>This version has no figures (base models and versions registered "
                   "before figures existed).</p>")
    for f in r["figures"]:
        out.append(f'<figure><img alt="{escape(f["title"])}" src="{f["data_uri"]}">'
                   f"<figcaption>{escape(f['title'])}</figcaption></figure>")
    return out


def render(report: dict[str, Any]) -> str:
    """The whole document (UTF-8 text)."""
    title = f"{report['model_name']} v{report['version']}"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    aliases = ", ".join(report["aliases"]) or "no alias"
    head = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>forgetflow report: {escape(title)}</title><style>{CSS}</style></head>"
            f"<body><h1>Unlearning report: {escape(title)}</h1>"
            f'<p class="sub">{escape(aliases)} · MLflow run <code>{escape(report["run_id"])}'
            f"</code> · workspace <code>{escape(report['workspace'])}</code> · generated "
            f"{stamp}</p>")
    return head + "\n".join(_sections(report)) + "</body></html>\n"
