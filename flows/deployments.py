"""Serve the project's flows as Prefect deployments (the docker-compose worker runs ``python -m flows.deployments``).

Defaults come from the environment: ``POLYGLOT_WORKSPACE`` (the workspace every flow works in),
``POLYGLOT_VLLM_URL`` (one vLLM URL or several, comma-separated), ``POLYGLOT_TRANSLATORS`` (a translators file
choosing the translator of each language, instead of one server for all), ``POLYGLOT_REVIEW_PULL_MINUTES`` (how often
review-pull runs on its own; default 15). Each deployment's parameters can be overridden per run in the UI.
"""

from __future__ import annotations

import os
from datetime import timedelta


def deployments() -> list:
    from flows.cycle import cycle_flow
    from flows.finetune import finetune_flow
    from flows.release import publish_flow
    from flows.review import review_pull_flow, review_push_flow
    from flows.translate import translate_flow

    workspace = os.environ.get("POLYGLOT_WORKSPACE", "/data/workspace")
    server = os.environ.get("POLYGLOT_VLLM_URL", "http://127.0.0.1:8000")
    minutes = float(os.environ.get("POLYGLOT_REVIEW_PULL_MINUTES", "15"))
    if minutes <= 0:
        raise ValueError(f"POLYGLOT_REVIEW_PULL_MINUTES must be positive, got {minutes}")
    return [
        translate_flow.to_deployment(
            "translate",
            parameters={
                "inputs": [],
                "workspace": workspace,
                "server": server,
                "translators": os.environ.get("POLYGLOT_TRANSLATORS"),
            },
        ),
        review_push_flow.to_deployment("review-push", parameters={"workspace": workspace}),
        review_pull_flow.to_deployment(
            "review-pull", parameters={"workspace": workspace}, interval=timedelta(minutes=minutes)
        ),
        finetune_flow.to_deployment("finetune", parameters={"workspace": workspace, "server": server}),
        publish_flow.to_deployment("publish", parameters={"workspace": workspace}),
        cycle_flow.to_deployment("cycle", parameters={"inputs": [], "workspace": workspace, "server": server}),
    ]


def main() -> None:
    from prefect import serve

    serve(*deployments())


if __name__ == "__main__":
    main()
