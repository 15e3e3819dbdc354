"""The audit report as one self-contained HTML file: inline CSS, figures as data URIs, no
scripts and no links out, so it opens offline and can be archived or mailed as it is."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from forgetflow.report.words import HEX, number, sentence, short, stage_title, stages, words

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
.stage{border:1px solid #d0d7de;border-left:6px solid #1a7f37;border-radius:8px;
padding:.5rem .9rem;margin:.6rem 0;break-inside:avoid}.stage.failed{border-left-color:#cf222e}
.stage h3{margin:.2rem 0 .4rem;font-size:1.05rem}.stage p{margin:.25rem 0}
figure{margin:1rem 0;border:1px solid #d0d7de;border-radius:8px;padding:.5rem}
figure img{max-width:100%;height:auto;display:block}figcaption{color:#57606a;font-size:.85rem}
details{margin:.3rem 0}summary{cursor:pointer;color:#0969da}
code{font-size:.85em;background:#f6f8fa;padding:0 .25em;border-radius:4px}
@page{margin:14mm}
@media print{body{margin:0;max-width:none;font-size:10pt}h2{break-before:page;break-after:avoid}
h2.first{break-before:auto}table,tr,figure,.card,.stage{break-inside:avoid}
figure img{max-height:220mm;width:auto}details{display:block}summary{color:#1b1f24}
details>*{display:block}}
"""


class Markup(str):
    """An already-rendered cell."""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"
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


def _digest(value: Any) -> str:
    """A long hex digest shortened, the full value on hover."""
    text = str(value)
    return (f'<span title="{escape(text)}">{escape(short(text))}</span>' if HEX.match(text)
            else escape(_fmt(value)))


def _receipt(q: dict[str, Any]) -> str:
    """The whole receipt, collapsed: digests shortened, metrics in words and units."""
    receipt = q.get("receipt")
    if not receipt:
        return ""
    rows = []
    for k, v in sorted(receipt.items()):
        if k == "gate_metrics" and isinstance(v, dict):
            shown = "<br>".join(f"{escape(words(m))}: {escape(number(m, x))}"
                                for m, x in sorted(v.items()))
        elif k == "serving" and isinstance(v, list):
            shown = "<br>".join(
                f"{escape(str(s.get('alias')))} v{escape(str(s.get('model_version')))}, data "
                f"{escape(str(s.get('data_version')))}, weights {_digest(s.get('model_sha256'))}"
                for s in v)
        elif k.endswith("_at") and isinstance(v, str):
            shown = f'<span title="{escape(v)}">{escape(_when(v))}</span>'
        else:
            shown = _digest(v)
        rows.append(f"<tr><th>{escape(k)}</th><td>{shown}</td></tr>")
    return (f"<details><summary>Full receipt of request {q['id']}</summary><table>"
            f"{''.join(rows)}</table></details>")


def _verdict(passed: Any) -> Markup:
    if passed in ("unlearned", "processing", "pending"):  # on the way: neither pass nor fail
        return Markup(f"<td>{escape(str(passed))}</td>")
    ok = passed in (True, "passed", "done")
    text = {True: "passed", False: "FAILED"}.get(passed, str(passed))
    return Markup(f'<td class="{"pass" if ok else "fail"}">{escape(text)}</td>')


def _setting(value: str) -> str:
    """An MLflow param (always text) with floats rounded like every other number."""
    try:
        return _fmt(float(value)) if "." in value or "e" in value else value
    except ValueError:
        return value


def _due(submitted: str | None, days: int) -> str:
    if not submitted:
        return "—"
    return _when((datetime.fromisoformat(submitted) + timedelta(days=days)).isoformat())


def _when(iso: str | None) -> str:
    return "—" if not iso else iso[:16].replace("T", " ") + " UTC"


def _stage_cards(r: dict[str, Any]) -> list[str]:
    out = ['<h2 class="first">Verdict per stage</h2>']
    grouped = stages(r["gate"]["checks"])
    if not grouped:
        out.append("<p>No gate checks recorded (a base model is the gate's reference).</p>")
    for stage, checks in grouped.items():
        ok = all(c["passed"] for c in checks)
        lines = "".join(
            f'<p><span class="{"pass" if c["passed"] else "fail"}">'
            f'{"✓" if c["passed"] else "✗"}</span> {escape(sentence(c, r.get("classes")))}'
            + (f'<br><small class="sub">{escape(c["note"])}</small>'
               if c.get("note") and not c["note"].startswith("not gated") else "") + "</p>"
            for c in checks)
        out.append(f'<div class="stage{"" if ok else " failed"}" id="stage-{escape(stage)}">'
                   f'<h3>{escape(stage_title(stage, r.get("classes")))}: '
                   f'<span class="{"pass" if ok else "fail"}">{"passed" if ok else "FAILED"}'
                   f"</span></h3>{lines}</div>")
    return out


def _requests(r: dict[str, Any]) -> list[str]:
    out = ["<h2>Requests, receipts and timeline</h2>"]
    if not r["requests"]:
        return out + ["<p>No deletion request reached this version.</p>"]
    gate = r["gate"]
    out.append(f"<p>Timeline per request: submitted → unlearned (the batch, started "
               f"{escape(_when(gate.get('started_at')))}, registered a version without the "
               "rows) → done (every serving alias serves such a version; the receipt is signed "
               "then) against its due date. Selectors are shown without personal data: a "
               "subject as a digest prefix, samples as a count.</p>")
    sig = {True: "✓ valid", False: "✗ INVALID", None: "not checked (no key here)"}
    days = r.get("sla_days", 30)
    rows = [[q["id"], q.get("kind"), q.get("payload"), _verdict(q.get("status")),
             _when(q.get("created_at")), _when(gate.get("finished_at")),
             _when((q.get("receipt") or {}).get("issued_at")), _due(q.get("created_at"), days),
             ", ".join(f"{s['alias']} v{s['model_version']}"
                       for s in (q.get("receipt") or {}).get("serving", [])) or "—",
             sig[q.get("signature_ok")]] for q in r["requests"]]
    out.append(_table(["request", "kind", "selector", "status", "submitted", "unlearned",
                       "done (receipt)", f"due ({days} days)", "served by", "signature"],
                      rows, {0}))
    out += [_receipt(q) for q in r["requests"]]
    return out


def _sections(r: dict[str, Any]) -> list[str]:
    m, tags = r["metrics"], r["tags"]
    out = [f'<div class="cards"><div class="card">gate<b id="gate">'
           f'{escape(tags.get("gate") or "—")}</b></div>'
           f'<div class="card">test accuracy, kept classes<b id="test_acc">'
           f'{escape(number("test_acc", m.get("test_acc_kept", m.get("test_acc"))))}</b></div>'
           f'<div class="card">forgotten rows<b>{escape(str(tags.get("forget_set_size") or "—"))}'
           f'</b></div><div class="card">requests<b>{len(r["requests"])}</b></div></div>']
    out += _stage_cards(r)
    out += _requests(r)
    if r["gate"]["decisions"]:
        out.append("<h2>Attempts (escalation ladder)</h2>")
        out.append(_table(["attempt", "method", "config", "seconds", "gate"], [
            [i + 1, d["method"], d["config"], number("unlearn_seconds", d["seconds"]),
             _verdict(d["gate"])] for i, d in enumerate(r["gate"]["decisions"])], {0, 3}))
    out.append("<h2>Pooled metrics</h2><p>Every forget row of the batch taken together (a "
               "whole forgotten class included), so these are not what the gate judged: the "
               "verdicts above read each stage on its own.</p>")
    out.append(_table(["metric", "in words", "value"], [
        [k, words(k), number(k, v)] for k, v in m.items()], {2}))
    out.append("<h2>Lineage back to the base model</h2>")
    out.append(_table(
        ["version", "aliases", "kind", "method", "gate", "data", "forget set", "sha256",
         "requests", "batch", "test acc"],
        [[f"v{c['version']}", ", ".join(c["aliases"]), c["tags"]["kind"], c["tags"]["method"],
          _verdict(c["tags"]["gate"]), f"{c['tags']['parent_data_version'] or '·'} → "
          f"{c['tags']['data_version']}", c["tags"]["forget_set_size"],
          short(c["tags"]["forget_set_sha256"] or "", 16), c["tags"]["deletion_request_ids"],
          c["tags"]["batch_id"], number("test_acc", c["metrics"].get("test_acc"))]
         for c in r["lineage"]], {10}))
    out.append("<h2>Data versions</h2>")
    out.append(_table(["version", "source", "rows per split", "excluded ids", "manifest sha256",
                       "batch", "requests"],
                      [[d["tag"], d["source"], d["rows"], d["excluded"],
                        short(d["manifest_sha256"], 16), d["batch_id"], d["request_ids"]]
                       for d in r["data_versions"]], {3}))
    out.append("<h2>Thresholds and every metric of this version</h2>")
    if r["thresholds"]:
        out.append(_table(["gate setting", "value"],
                          [[k, _setting(v)] for k, v in sorted(r["thresholds"].items())], {1}))
    out.append(_table(["metric", "in words", "value"], [
        [k, words(k), number(k, v)] for k, v in sorted(r["all_metrics"].items())], {2}))
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
            f"</code> · generated {stamp}</p>")
    return head + "\n".join(_sections(report)) + "</body></html>\n"
