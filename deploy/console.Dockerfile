# The admin console as a Cloud Run service of its own (behind IAP): Streamlit on $PORT.
# PARADYZE_API_URL names the functions: a base URL, or Cloud Run's per-service URLs as a template
# with {function} (the deploy sets it). It calls them with its service account's ID token for
# PARADYZE_API_AUDIENCE (the deploy sets it), or with PARADYZE_ADMIN_TOKEN where that is set.
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

RUN if ! python3 -c "import ensurepip" 2>/dev/null; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY console/requirements.txt local_emulator/docker/.wheel[s] /tmp/build/
RUN if ls /tmp/build/*.whl >/dev/null 2>&1; then \
        pip install --no-cache-dir --no-index --find-links /tmp/build -r /tmp/build/requirements.txt; \
    else \
        pip install --no-cache-dir -r /tmp/build/requirements.txt; \
    fi \
    && rm -rf /tmp/build

WORKDIR /app
COPY console /app/console
RUN groupadd --system --gid 10002 paradyze \
    && useradd --system --uid 10002 --gid 10002 --home-dir /tmp --no-create-home paradyze
USER 10002:10002
ENV PORT=8080 \
    PARADYZE_HOME=/tmp/paradyze
EXPOSE 8080
CMD ["sh", "-c", "exec streamlit run console/app.py --server.port \"$PORT\" --server.address 0.0.0.0 --server.headless true --browser.gatherUsageStats false"]
