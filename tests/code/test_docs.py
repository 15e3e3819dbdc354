"""The operator docs cannot drift: every params key and FORGETFLOW_* variable the code knows is
in docs/configuration.md (and nothing else is), and every command in the docs is valid —
forgetflow commands parse against the real CLI, make targets exist, mlflow/prefect options are
in their --help."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml

from forgetflow.cli.app import app
from forgetflow.core.params import Params

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "docs" / "operations.md", ROOT / "docs" / "configuration.md",
        ROOT / "docs" / "design.md"]
CONFIG_DOC = (ROOT / "docs" / "configuration.md").read_text()
CODE_DIRS = ("forgetflow", "flows", "tasks", "scripts")
BIN = Path(sys.executable).parent


def params_keys_in_code() -> set[str]:
    """`section.key` for every field of every params section (the strict models)."""
    return {f"{section}.{key}" for section, field in Params.model_fields.items()
            for key in field.annotation.model_fields}


def test_every_params_key_is_documented_and_no_other() -> None:
    sections = "|".join(Params.model_fields)
    documented = set(re.findall(rf"`((?:{sections})\.[a-z_]+)`", CONFIG_DOC))
    in_code = params_keys_in_code()
    assert in_code - documented == set(), "params keys missing from docs/configuration.md"
    assert documented - in_code == set(), "docs/configuration.md names keys the code lacks"
    shipped = yaml.safe_load((ROOT / "params.yaml").read_text())
    in_yaml = {f"{s}.{k}" for s, body in shipped.items() if s in Params.model_fields
               for k in body}
    assert in_yaml <= in_code


def env_vars_in_code() -> set[str]:
    found: set[str] = set()
    files = [p for d in CODE_DIRS for p in (ROOT / d).rglob("*") if p.is_file()
             and p.suffix in ("", ".py", ".sh", ".yaml")] + [ROOT / "Makefile"]
    for path in files:
        found |= set(re.findall(r"\bFORGETFLOW_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    return found


def test_every_environment_variable_is_documented_and_no_other() -> None:
    documented = set(re.findall(r"`(FORGETFLOW_[A-Z0-9_]+)`", CONFIG_DOC))
    in_code = env_vars_in_code()
    assert in_code - documented == set(), "FORGETFLOW_* variables missing from the docs"
    assert documented - in_code == set(), "the docs name FORGETFLOW_* variables no code reads"


def doc_commands() -> list[tuple[str, list[str]]]:
    """(doc name, argv) of every line in the docs' ```bash blocks (comments dropped)."""
    out = []
    for doc in DOCS:
        for block in re.findall(r"```bash\n(.*?)```", doc.read_text(), re.S):
            for line in block.splitlines():
                argv = shlex.split(line, comments=True)
                if argv:
                    out.append((doc.name, argv))
    return out


def parse_forgetflow(argv: list[str]) -> None:
    """Parse argv with the CLI's own parser, down to the leaf command, without running it."""
    command = typer.main.get_command(app)
    name, args, parent = "forgetflow", list(argv), None
    while True:
        ctx = command.make_context(name, args, parent=parent)
        if not hasattr(command, "resolve_command"):
            return
        rest = [*getattr(ctx, "_protected_args", []), *getattr(ctx, "protected_args", []),
                *ctx.args]
        name, command, args = command.resolve_command(ctx, rest)
        parent = ctx


def check_help(argv: list[str]) -> None:
    words = [a for a in argv if not a.startswith("-")][: 3 if argv[0] == "prefect" else 2]
    words = [w for w in words if re.fullmatch(r"[a-z-]+", w)]
    helptext = subprocess.run([str(BIN / words[0]), *words[1:], "--help"], capture_output=True,
                              text=True, timeout=120)
    assert helptext.returncode == 0, helptext.stderr[-2000:]
    for option in (a.split("=")[0] for a in argv if a.startswith("--")):
        assert option in helptext.stdout, f"{' '.join(argv)}: {option} not in --help"


COMMANDS = doc_commands()


def test_docs_have_commands() -> None:
    assert len(COMMANDS) > 20


@pytest.mark.parametrize("doc, argv", COMMANDS, ids=[" ".join(a) for _, a in COMMANDS])
def test_doc_command_is_valid(doc: str, argv: list[str]) -> None:
    tool = argv[0]
    if tool == "forgetflow":
        parse_forgetflow(argv[1:])
    elif tool == "make":
        dry = subprocess.run(["make", "-n", *argv[1:]], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
        assert dry.returncode == 0, dry.stderr
    elif tool == "export":
        assert all(re.fullmatch(r"[A-Z_]+=\S+", a) for a in argv[1:])
    elif tool in ("mlflow", "prefect"):
        check_help(argv)
    else:
        pytest.fail(f"{doc}: `{' '.join(argv)}` is a command no test checks")


# The repo holds the documents its code follows: nothing may cite a document that is not in it.
OUTSIDE_DOC = "DE" + "SIGN"  # built, never spelled out, so this file passes its own scan
SCANNED = ("forgetflow", "flows", "tasks", "scripts", "docs", "tests", "infra", "README.md",
           "BENCHMARKS.md", "params.yaml", "dvc.yaml", "prefect.yaml", "Makefile")
POINTER = re.compile(r"\b(design|method)\.md §(\d+)")


def scanned_files() -> list[Path]:
    files = []
    for name in SCANNED:
        path = ROOT / name
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        files += [p for p in found if "__pycache__" not in p.parts]
    return files


def test_nothing_cites_a_document_outside_the_repo() -> None:
    word = re.compile(rf"\b{OUTSIDE_DOC}\b".encode())
    hits = [f"{path.relative_to(ROOT)}:{n}" for path in scanned_files()
            for n, line in enumerate(path.read_bytes().splitlines(), 1) if word.search(line)]
    assert hits == [], f"point at docs/design.md §N or docs/method.md §N instead: {hits}"


def numbered_sections(doc: str) -> set[str]:
    return set(re.findall(r"^## (\d+)\. ", (ROOT / "docs" / doc).read_text(), re.M))


def test_section_pointers_name_existing_sections() -> None:
    sections = {d: numbered_sections(f"{d}.md") for d in ("design", "method")}
    assert sections["design"] == {str(n) for n in range(1, len(sections["design"]) + 1)}
    pointers = [(path, doc, n) for path in scanned_files()
                for doc, n in POINTER.findall(path.read_bytes().decode(errors="replace"))]
    assert any(doc == "design" for _, doc, _ in pointers)
    dangling = [f"{path.relative_to(ROOT)}: {doc}.md §{n}" for path, doc, n in pointers
                if n not in sections[doc]]
    assert dangling == [], f"pointers to sections that do not exist: {dangling}"


def test_design_lists_every_lineage_tag() -> None:
    from forgetflow.adapters.registry import MODEL_SHA_TAG
    from forgetflow.pipeline.lineage import BATCH_TAG_KEYS, TAG_KEYS

    listed = set(re.findall(r"`forgetflow\.([a-z0-9_]+)`",
                            (ROOT / "docs" / "design.md").read_text()))
    assert {*TAG_KEYS, *BATCH_TAG_KEYS, MODEL_SHA_TAG} - listed == set()
