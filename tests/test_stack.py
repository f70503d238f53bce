"""The production stack's files: docker-compose.yml against the compose specification's JSON schema (as shipped
in the docker-compose package on PyPI; no image is pulled), the Dockerfile's syntax and sources, the env file
example, and the Prefect deployments the worker serves."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

import pytest
import yaml

from .conftest import REPO


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_file_follows_the_compose_specification(compose, tmp_path):
    import jsonschema

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "docker-compose==1.29.2",
            "-d",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next(tmp_path.glob("docker_compose-*.whl"))
    schema = json.loads(zipfile.ZipFile(wheel).read("compose/config/compose_spec.json"))
    errors = [f"{list(e.path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(compose)]
    assert not errors, errors
    broken = dict(compose, services={"x": {"image": "a", "ports": [{"bad": 1}]}})
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))  # the schema does catch mistakes


def test_stack_binds_locally_keeps_secrets_in_env_and_checks_health(compose):
    services = compose["services"]
    assert {"vllm", "postgres", "labelstudio", "prefect-server", "worker"} <= set(services)
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), (name, port)
        if name != "worker":
            assert "healthcheck" in service, name
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|USER_TOKEN|API_KEY$|^HF_TOKEN$", key):
                assert str(value).startswith("${"), f"{name}.{key} must come from .env"
    vllm = services["vllm"]
    assert "--enable-lora" in vllm["command"] and vllm["deploy"]["resources"]["reservations"]["devices"][0][
        "capabilities"
    ] == ["gpu"]
    example = (REPO / ".env.example").read_text()
    for variable in set(re.findall(r"\$\{(\w+)", (REPO / "docker-compose.yml").read_text())):
        assert re.search(rf"^{variable}=", example, re.M), f"{variable} is not in .env.example"


def test_dockerfile_parses_and_copies_what_exists():
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(path=str(REPO / "Dockerfile"))
    instructions = [i["instruction"] for i in parser.structure if i["instruction"] != "COMMENT"]
    assert instructions[0] == "FROM" and "CMD" in instructions and "USER" in instructions
    known = {"FROM", "ENV", "RUN", "WORKDIR", "COPY", "USER", "VOLUME", "CMD", "ARG", "EXPOSE", "LABEL", "ENTRYPOINT"}
    assert set(instructions) <= known
    for item in parser.structure:
        if item["instruction"] == "COPY":
            for source in item["value"].split()[:-1]:
                assert (REPO / source).exists(), source
    assert "flows.deployments" in parser.structure[-1]["value"]


def test_worker_serves_every_deployment_with_a_review_pull_schedule():
    from flows.deployments import deployments

    found = {d.name: d for d in deployments()}
    assert set(found) == {"translate", "review-push", "review-pull", "finetune", "publish", "cycle"}
    assert found["review-pull"].schedules and not found["translate"].schedules
