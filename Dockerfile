# Tocsin worker image. Connects to the Temporal server named by TEMPORAL_ADDRESS (see docker-compose.yml).

# Build in a throwaway stage so the source tree, pip and setuptools' build env stay out of the final image.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# pyproject.toml names README.md as the readme, so the build needs it.
COPY pyproject.toml README.md ./
COPY tocsin/ tocsin/
COPY workflows/ workflows/
COPY activities/ activities/
COPY worker/ worker/
# The built-in templates and default policy: the wheel carries them as package data (tocsin/bundled.py).
COPY templates/ templates/
COPY policies/ policies/
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .


FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TOCSIN_HOME=/var/lib/tocsin

# A fixed numeric UID lets orchestrators verify "runs as non-root" without reading /etc/passwd.
# The state dir is created here, owned by that user, so a fresh named volume mounted on it inherits
# the ownership; otherwise Docker would create it root-owned and the worker could not write its outbox.
RUN groupadd --system --gid 10001 tocsin \
    && useradd --system --uid 10001 --gid tocsin --no-create-home --shell /usr/sbin/nologin tocsin \
    && install -d -o tocsin -g tocsin -m 0750 /var/lib/tocsin

COPY --from=build /opt/venv /opt/venv

# The policy is the package's own unless TOCSIN_POLICY names a mounted one; templates are the package's unless
# $TOCSIN_HOME/templates holds an operator's copy.
WORKDIR /app

USER 10001:10001

# Exec form keeps Python as PID 1, so it receives SIGTERM directly and drains in-flight tasks.
CMD ["python", "-m", "worker"]
