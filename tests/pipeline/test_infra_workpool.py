"""infra/k8s against a real (local, PostgreSQL-backed) Prefect server: the GPU job template is
accepted by `prefect work-pool create --type kubernetes`, infra/k8s/prefect.yaml deploys to it,
and prefect-kubernetes renders each deployment into a Job asking for one NVIDIA GPU."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from prefect.client.orchestration import PrefectClient
from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration
from prefectserver import PrefectServer, cli_env, run_prefect

pytestmark = pytest.mark.slow
POOL = "forgetflow-k8s-gpu"
DEPLOY_ENV = {"FORGETFLOW_IMAGE": "registry.test/forgetflow:gpu",
              "MLFLOW_TRACKING_URI": "http://mlflow:5000",
              "MLFLOW_S3_ENDPOINT_URL": "http://s3:8333",
              "FORGETFLOW_S3_URL": "s3://forgetflow/prod"}
# set in the deploying shell too: none of them may reach a deployment's job variables
CREDENTIALS = {"FORGETFLOW_DB_URL": "postgresql+psycopg://u:pw-in-shell@db/forgetflow",
               "AWS_ACCESS_KEY_ID": "key-in-shell", "AWS_SECRET_ACCESS_KEY": "secret-in-shell"}


async def rendered_jobs(api: str) -> dict[str, dict]:
    async with PrefectClient(api=api) as client:
        pool = await client.read_work_pool(POOL)
        deployments = await client.read_deployments()
        jobs = {}
        for dep in deployments:
            if dep.work_pool_name != POOL:
                continue
            config = await KubernetesWorkerJobConfiguration.from_template_and_values(
                pool.base_job_template, dep.job_variables or {}, client=client)
            jobs[dep.name] = config.job_manifest
        return jobs


def test_gpu_work_pool_and_deployments(prefect_pg_server: PrefectServer, tmp_path: Path) -> None:
    env = cli_env({"PREFECT_API_URL": prefect_pg_server.api_url,
                   "PREFECT_HOME": str(tmp_path / "prefect"), **DEPLOY_ENV, **CREDENTIALS})
    run_prefect(env, "work-pool", "create", POOL, "--type", "kubernetes", "--base-job-template",
            "infra/k8s/gpu-job-template.json")
    assert "nvidia.com/gpu" in run_prefect(env, "work-pool", "inspect", POOL)
    run_prefect(env, "--no-prompt", "deploy", "--all", "--prefect-file", "infra/k8s/prefect.yaml")

    jobs = asyncio.run(rendered_jobs(prefect_pg_server.api_url))
    assert set(jobs) == {"nightly-deletions-gpu", "train-gpu"}
    for manifest in jobs.values():
        pod = manifest["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["image"] == DEPLOY_ENV["FORGETFLOW_IMAGE"]
        assert int(container["resources"]["limits"]["nvidia.com/gpu"]) == 1
        assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
        assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "forgetflow-workspace"
        env = container["env"]  # a mapping until the worker prepares the flow run
        env = env if isinstance(env, dict) else {e["name"]: e["value"] for e in env}
        assert env["MLFLOW_TRACKING_URI"] == DEPLOY_ENV["MLFLOW_TRACKING_URI"]
        assert not set(env) & set(CREDENTIALS)  # they come from the Secret:
        assert container["envFrom"] == [{"secretRef": {"name": "forgetflow-secrets"}}]
        assert not any(v in json.dumps(manifest) for v in CREDENTIALS.values())
