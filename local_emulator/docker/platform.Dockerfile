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

# Requirements first: the layer is reused while only the code changes.
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt

WORKDIR /app
COPY functions /app/functions
COPY console /app/console
COPY local_emulator /app/local_emulator
COPY supabase /app/supabase

EXPOSE 8080 8501
CMD ["python", "-m", "local_emulator", "--no-console"]
