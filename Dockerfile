# The llava-polyglot worker: the project's flows and command line, served as Prefect deployments.
# vLLM runs in its own container (docker-compose.yml); Label Studio too.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DO_NOT_TRACK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    POLYGLOT_HOME=/data/polyglot

RUN useradd --create-home --uid 1000 polyglot
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY flows ./flows
COPY annotation ./annotation
COPY language_rules ./language_rules
RUN pip install . && mkdir -p /data && chown polyglot /data
USER polyglot
VOLUME ["/data"]
# Serves every deployment (translate, review-push, review-pull on a schedule, finetune, publish, cycle).
CMD ["python", "-m", "flows.deployments"]
