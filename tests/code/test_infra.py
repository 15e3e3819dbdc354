"""infra/ as far as it can be checked without Docker or a cluster: every file parses, every
image, file, command, database and variable it names exists in this repository (or is the
version this repository pins), and the GPU wiring is where Docker and Kubernetes look for it."""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TEMPLATE_VAR = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
STANDARD_VARS = {"PREFECT_API_URL", "MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL",
                 "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}


def compose() -> dict:
    return yaml.safe_load((INFRA / "compose.yaml").read_text())


def source_text() -> str:
    return "\n".join(p.read_text() for d in ("forgetflow", "flows", "tasks")
                     for p in (ROOT / d).rglob("*.py"))


def test_compose_has_the_stack_and_refers_to_real_files() -> None:
    services = compose()["services"]
    assert {"postgres", "s3", "prefect-server", "mlflow", "worker", "gpu-worker"} <= set(services)
    for name, svc in services.items():
        build = svc.get("build")
        if build:
            assert (INFRA / build["context"] / build["dockerfile"]).is_file(), name
        for volume in svc.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith("./"):
                assert (INFRA / host).exists(), f"{name}: {host}"
    dockerfile = (INFRA / "Dockerfile").read_text()
    for copied in re.findall(r"^COPY (.+) \./$", dockerfile, re.M):
        for item in copied.split():
            assert (ROOT / item).exists(), item


def test_compose_images_and_commands_match_what_is_pinned() -> None:
    services = compose()["services"]
    prefect_image = f"prefecthq/prefect:{md.version('prefect')}-"
    assert services["prefect-server"]["image"].startswith(prefect_image)
    weed = Path(sys.executable).parent / "weed"
    version = subprocess.run([str(weed if weed.exists() else shutil.which("weed")), "version"],
                             capture_output=True, text=True, check=True).stdout
    assert services["s3"]["image"].split(":")[1] in version
    ours = [n for n, s in services.items() if s.get("image", "").startswith("forgetflow:")]
    assert {"mlflow", "worker", "gpu-worker"} <= set(ours)
    for name in ours:
        program = services[name]["command"][0]
        assert (Path(sys.executable).parent / program).exists(), f"{name}: {program}"
    pools = {s["command"][s["command"].index("--pool") + 1] for n, s in services.items()
             if "--pool" in s.get("command", [])}
    roots = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    assert {d["work_pool"]["name"] for d in roots} <= pools  # prefect.yaml's pool is served
    assert services["worker"]["deploy"]["replicas"] >= 2  # several workers on one pool


def test_compose_environment_is_read_by_the_code() -> None:
    doc, code = compose(), source_text()
    env = doc["x-forgetflow-env"]
    for key in env:
        assert key in STANDARD_VARS or f'"{key}"' in code, key
    databases = set(re.findall(r"CREATE DATABASE (\w+);",
                               (INFRA / "postgres" / "init.sql").read_text()))
    urls = [env["FORGETFLOW_DB_URL"], *doc["services"]["mlflow"]["command"],
            doc["services"]["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]]
    used = {u.rsplit("/", 1)[1] for u in urls if u.startswith("postgresql")}
    assert used == {"forgetflow", "mlflow", "prefect"} and used <= databases
    s3 = json.loads((INFRA / "seaweedfs" / "s3.json.template").read_text())
    keys = s3["identities"][0]["credentials"][0]
    s3_env = doc["services"]["s3"]["environment"]
    for placeholder in keys.values():  # filled from the same .env values the clients read
        name = placeholder.strip("@")
        assert s3_env[name] == env[name] and placeholder in doc["services"]["s3"]["command"][0]


def test_compose_takes_every_credential_from_env_and_listens_on_localhost() -> None:
    text = (INFRA / "compose.yaml").read_text()
    for name in ("POSTGRES_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        uses = re.findall(r"\$\{" + name + r"(:[?-])?[^}]*\}", text)
        assert uses and set(uses) == {":?"}, f"{name}: required, never defaulted"
        assert f"{name}=" in (INFRA / ".env.example").read_text()
    for name, svc in compose()["services"].items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    assert "/infra/.env" in (ROOT / ".gitignore").read_text().splitlines()
    assert not (INFRA / "seaweedfs" / "s3.json").exists()


def test_k8s_credentials_come_from_a_secret_not_job_variables() -> None:
    """Job variables are stored in Prefect's database and shown in its UI."""
    doc = yaml.safe_load((INFRA / "k8s" / "prefect.yaml").read_text())
    secretish = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|DB_URL|TOKEN", re.I)
    for deployment in doc["deployments"]:
        env = deployment["work_pool"]["job_variables"].get("env", {})
        assert not [k for k in env if secretish.search(k)], deployment["name"]
    template = json.loads((INFRA / "k8s" / "gpu-job-template.json").read_text())
    container = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"][
        "containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "{{ secret_name }}"}}]
    assert template["variables"]["properties"]["secret_name"]["default"]


def test_gpu_worker_reserves_a_gpu() -> None:
    devices = compose()["services"]["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"] and devices[0]["count"] >= 1


def test_k8s_job_template_declares_every_variable_it_uses() -> None:
    template = json.loads((INFRA / "k8s" / "gpu-job-template.json").read_text())
    declared = set(template["variables"]["properties"])
    used = set(TEMPLATE_VAR.findall(json.dumps(template["job_configuration"])))
    assert used <= declared, used - declared
    container = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"][
        "containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "{{ gpu_count }}"


def test_k8s_deployments_point_at_real_flows_and_template_variables() -> None:
    doc = yaml.safe_load((INFRA / "k8s" / "prefect.yaml").read_text())
    declared = set(json.loads((INFRA / "k8s" / "gpu-job-template.json").read_text())[
        "variables"]["properties"])
    readme = (INFRA / "README.md").read_text()
    for deployment in doc["deployments"]:
        path, func = deployment["entrypoint"].split(":")
        tree = ast.parse((ROOT / path).read_text())
        assert func in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, path
        pool = deployment["work_pool"]
        assert set(pool["job_variables"]) <= declared
        assert f"prefect work-pool create {pool['name']} --type kubernetes" in readme
