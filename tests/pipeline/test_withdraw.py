"""A request submitted by mistake can be withdrawn while it is pending: it ends `rejected`
with the reason, no batch claims it, and one a batch has taken (or closed) is refused."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app

runner = CliRunner()


def test_withdraw_a_pending_request_only(trained: dict) -> None:
    submitted = runner.invoke(app, ["request", "submit", "--kind", "class", "--label", "4",
                                    "--json"])
    rid = json.loads(submitted.stdout)["id"]
    out = runner.invoke(app, ["request", "withdraw", str(rid), "--reason",
                              "wrong  class,\\n sorry", "--json"])
    assert out.exit_code == 0, out.output
    view = json.loads(out.stdout)
    assert view["status"] == "rejected" and view["reason"] == "wrong class,\\n sorry"
    ledger = Ledger(Workspace.from_env().ledger_url)
    assert not ledger.has_work("ff-test")  # nothing left for a batch to claim
    again = runner.invoke(app, ["request", "withdraw", str(rid)])
    assert again.exit_code == 2 and "is rejected: only a pending request" in again.stderr
    receipt = runner.invoke(app, ["receipt", "verify", str(rid), "--json"])
    assert receipt.exit_code == 1 and "was rejected (wrong class" in receipt.stdout
    unknown = runner.invoke(app, ["request", "withdraw", "9999"])
    assert unknown.exit_code == 2 and "9999" in unknown.stderr
    taken = json.loads(runner.invoke(app, ["request", "submit", "--kind", "class", "--label",
                                           "5", "--json"]).stdout)["id"]
    ledger.transition([taken], "processing")  # a batch claimed it
    refused = runner.invoke(app, ["request", "withdraw", str(taken)])
    assert refused.exit_code == 2 and "is processing" in refused.stderr
    assert ledger.get(taken).status == "processing"
