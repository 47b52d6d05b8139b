"""What can be checked of deploy/ without Docker, Kubernetes or AWS: the files are well-formed,
refer to one another and to the project consistently, and publish nothing beyond loopback."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
MODULE = "assets_project.definitions"


def _load(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text())


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", [])
    return command if isinstance(command, str) else " ".join(command)


def test_compose_services_refer_to_existing_services_files_and_images() -> None:
    compose = _load("docker-compose.yml")
    services = compose["services"]
    assert {"webserver", "daemon", "code-server", "postgres", "minio"} <= set(services)
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} depends on unknown service {needed}"
        for volume in service.get("volumes", []):
            named = volume.split(":", 1)[0]
            if not named.startswith((".", "/")):
                assert named in compose["volumes"], f"{name}: volume {named} is not declared"
    build = services["code-server"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    built = services["code-server"]["image"]
    for name in ("webserver", "daemon"):
        assert services[name]["image"] == built  # the same image everywhere
    for name in ("webserver", "daemon", "code-server"):
        for word in shlex.split(_command(services[name])):
            if word.startswith("deploy/"):
                assert (REPO / word).exists(), f"{name} runs {word}, which does not exist"
        assert "deploy/dagster-home.sh" in _command(services[name])
    assert MODULE in _command(services["code-server"])


def test_the_grpc_workspace_points_at_the_code_server_service() -> None:
    compose = _load("docker-compose.yml")
    (entry,) = _load("workspace.grpc.yaml")["load_from"]
    server = entry["grpc_server"]
    assert server["host"] in compose["services"]
    assert f"-p {server['port']}" in _command(compose["services"][server["host"]])


def test_compose_publishes_only_on_loopback_and_carries_no_real_secret() -> None:
    compose = _load("docker-compose.yml")
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    text = (DEPLOY / "docker-compose.yml").read_text()
    # Every password is a variable with a local-only default, never a literal credential.
    for match in re.finditer(r"(PASSWORD|SECRET_ACCESS_KEY):\s*(\S+)", text):
        assert match.group(2).startswith("${"), match.group(0)


def test_compose_sets_what_the_instance_and_the_lake_read() -> None:
    environment = _load("docker-compose.yml")["x-dagster-environment"]
    needed = {"LAKE_URI", "LANDING_URI", "DAGSTER_STORAGE", "DAGSTER_COMPUTE_LOGS"}
    needed |= set(re.findall(r"env: (\w+)", (DEPLOY / "dagster.postgres.yaml").read_text()))
    needed |= set(re.findall(r"env: (\w+)", (DEPLOY / "dagster.s3-logs.yaml").read_text()))
    assert needed <= set(environment), needed - set(environment)
    assert environment["LAKE_URI"].startswith("s3://")


def test_helm_values_run_the_code_location_and_give_runs_the_same_environment() -> None:
    values = _load("helm/values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", MODULE]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert {e["name"] for e in deployment["env"]} == set(launcher["envVars"])
    assert deployment["envSecrets"] == launcher["envSecrets"]
    assert values["postgresql"]["enabled"] is False
    assert values["computeLogManager"]["type"] == "S3ComputeLogManager"
    text = (DEPLOY / "helm" / "values.yaml").read_text()
    assert "postgresqlPassword" not in text and "SECRET_ACCESS_KEY:" not in text


def test_the_ecs_task_definitions_run_the_image_with_the_shipped_instance_script() -> None:
    tasks = json.loads((DEPLOY / "ecs" / "task-definitions.json").read_text())
    launcher = yaml.safe_load((DEPLOY / "ecs" / "dagster.ecs.yaml").read_text())["run_launcher"]
    assert launcher["class"] == "EcsRunLauncher"
    names = [c["name"] for t in tasks.values() for c in t["containerDefinitions"]]
    assert launcher["config"]["container_name"] in names
    for task in tasks.values():
        for container in task["containerDefinitions"]:
            assert "deploy/dagster-home.sh" in " ".join(container.get("command", []))
            for variable in container.get("environment", []):
                assert "PASSWORD" not in variable["name"] and "SECRET" not in variable["name"]
