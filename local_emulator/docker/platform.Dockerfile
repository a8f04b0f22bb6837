# The platform for the compose stack: functions (local emulator) and the Streamlit console.
# Debian's python3 (3.11, a Cloud Run functions runtime) with the pinned requirements in a venv.
ARG BASE_IMAGE=paradyze/base:bookworm
FROM ${BASE_IMAGE}

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Requirements first: the layer is reused while only the code changes. docker_images.sh
# --with-stack fills local_emulator/docker/.wheels with the host's pip (which knows this
# machine's package index and CA); without it, pip installs from PyPI as usual.
COPY requirements.txt local_emulator/docker/.wheel[s] /tmp/build/
RUN if ls /tmp/build/*.whl >/dev/null 2>&1; then \
        pip install --no-cache-dir --no-index --find-links /tmp/build -r /tmp/build/requirements.txt; \
    else \
        pip install --no-cache-dir -r /tmp/build/requirements.txt; \
    fi \
    && rm -rf /tmp/build

WORKDIR /app
COPY functions /app/functions
COPY console /app/console
COPY local_emulator /app/local_emulator
COPY supabase /app/supabase

EXPOSE 8080 8501
CMD ["python", "-m", "local_emulator", "--no-console"]
