"""The report's words: numbers a person reads, one sentence per check that says what failed
when it failed, checks grouped by the stage they judge."""

from __future__ import annotations

import pytest

from forgetflow.report.words import number, sentence, stage_title, stages, words


@pytest.mark.parametrize("name, value, shown", [
    ("forget_acc", 0.01234567, "1.2%"), ("class-3.forget_acc", 1.0, "100.0%"),
    ("third_party_auc", 0.498765, "0.50"), ("test_acc_drop", 0.0123, "+1.2 pt"),
    ("depth.samples.relearn_gap", -0.0456, "-4.6 pt"), ("unlearn_seconds", 12.3456, "12.3 s"),
    ("forget_set_size", 12345, "12,345"), ("something_new", 0.123456789, "0.123"),
    ("forget_acc", None, "—"), ("forget_acc", float("nan"), "—"),
])
def test_numbers_are_rounded_for_people(name, value, shown):
    assert number(name, value) == shown


def test_words_name_the_stage_of_a_per_stage_metric():
    assert words("class-3.forget_acc") == "class-3 · accuracy on the forgotten rows"
    assert words("depth.samples.relearn_gap").startswith("samples · how much faster")
    assert words("asr").startswith("stamped test images")


def check(name, value, passed, **bound):
    return {"check": name, "value": value, "passed": passed, "note": "", **bound}


def test_sentences_say_pass_or_fail_with_the_threshold():
    ok = sentence(check("class-3: forget_acc", 0.0, True, max=0.02), ["a", "b", "c", "dress"])
    assert ok == ("Class 3 (dress) is no longer predicted: 0.0% of its rows are classified as "
                  "it (at most 2.0%).")
    bad = sentence(check("backdoor-7: asr", 0.9, False, max=0.05))
    assert "still works" in bad and "90.0%" in bad and "at most 5.0%" in bad
    auc = sentence(check("samples: third_party_auc", 0.91, False, max=0.6))
    assert "do not look" in auc and "0.91" in auc
    depth = sentence(check("class-3: depth class_feature_drop", 0.2, True, min=0.001))
    assert depth.endswith("+20.0 pt (at least +0.1 pt).")
    skipped = check("subject: third_party_auc", 0.7, True, max=0.6)
    skipped["note"] = "not gated: 12 samples < min_auc_samples (50)"
    assert sentence(skipped).startswith("Not judged: 12 samples")


def test_checks_group_by_stage_with_utility_last():
    grouped = stages([check("test_acc_drop", 0.0, True, max=0.02),
                      check("class-3: forget_acc", 0.0, True, max=0.02),
                      check("class-3: depth class_feature_drop", 0.1, True, min=0.001),
                      check("samples: third_party_auc", 0.5, True, max=0.6)])
    assert list(grouped) == ["class-3", "samples", "utility"]
    assert len(grouped["class-3"]) == 2
    assert stage_title("class-3", [str(i) for i in range(10)]) == "Class 3 forgotten"
    assert stage_title("backdoor-12") == "Backdoor of request 12 removed"


def test_printed_selectors_and_urls_hold_no_secrets_or_subjects():
    from forgetflow.adapters.stack import redact
    from forgetflow.core.ids import redacted_payload

    shown = redacted_payload({"subject": "alice@example.org"})
    assert "alice" not in str(shown) and len(shown["subject_sha256"]) == 12
    assert redacted_payload({"label": 3}) == {"label": 3}
    for url in ("postgresql+psycopg://ff:s3cret@db:5432/mlflow",
                "https://ff:s3cret@mlflow.example.org/", "http://u:s3cret@127.0.0.1:5000"):
        assert "s3cret" not in redact(url) and "***" in redact(url)
    assert redact("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"
