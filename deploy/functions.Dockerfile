# The platform image: functions/ (main.py, the paradyze package) on functions-framework, one image for
# every function. Each Cloud Run service runs it with its own FUNCTION_TARGET; functions-framework
# reads FUNCTION_TARGET and PORT from the environment.
#
# Cloud Build: BASE_IMAGE defaults to python:3.12-slim. Here, with no registry, docker_images.sh
# builds it FROM the debootstrapped paradyze/base:bookworm (Debian's python3 3.11, plus python3-venv).
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

# The folder's own requirements only: no test, console or local stand-in package. Locally the wheels
# come from local_emulator/docker/.wheels (docker_images.sh fills it with the host's pip).
COPY functions/requirements.txt local_emulator/docker/.wheel[s] /tmp/build/
RUN if ls /tmp/build/*.whl >/dev/null 2>&1; then \
        pip install --no-cache-dir --no-index --find-links /tmp/build -r /tmp/build/requirements.txt; \
    else \
        pip install --no-cache-dir -r /tmp/build/requirements.txt; \
    fi \
    && rm -rf /tmp/build

WORKDIR /app
COPY functions /app
RUN python -m compileall -q /app \
    && groupadd --system --gid 10002 paradyze \
    && useradd --system --uid 10002 --gid 10002 --home-dir /tmp --no-create-home paradyze
USER 10002:10002

# Cloud Run's file system is in memory and only /tmp is meant for scratch: the state folder goes there.
ENV FUNCTION_SOURCE=/app/main.py \
    PORT=8080 \
    PARADYZE_HOME=/tmp/paradyze
EXPOSE 8080
CMD ["functions-framework"]
