# syntax=docker/dockerfile:1
# slotmill image: the same image runs `migrate`, `api` (default) and `worker`; see compose.yaml
# and docs/operations.md. Build context is whitelisted by .dockerignore (no .env, no .venv).

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/slotmill
# The pinned dependencies alone first: this layer is rebuilt only when the lock changes.
# --no-deps: the lock is the complete runtime closure; `pip check` below fails the build if
# it is not, instead of pip quietly resolving an unpinned version.
COPY requirements.lock /tmp/requirements.lock
RUN /opt/slotmill/bin/pip install --no-deps -r /tmp/requirements.lock
COPY pyproject.toml README.md /src/
COPY slotmill /src/slotmill
COPY materializer /src/materializer
COPY api /src/api
COPY jobs /src/jobs
COPY sql /src/sql
RUN /opt/slotmill/bin/pip install --no-deps /src \
 && /opt/slotmill/bin/pip check

FROM python:3.11-slim
ENV PATH=/opt/slotmill/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SLOTMILL_HOME=/home/slotmill/.slotmill
# A fixed numeric id, so orchestrators that check runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 slotmill \
 && useradd --system --uid 10001 --gid slotmill --create-home --home-dir /home/slotmill slotmill
COPY --from=build /opt/slotmill /opt/slotmill
USER 10001:10001
WORKDIR /home/slotmill
EXPOSE 8000
ENTRYPOINT ["slotmill"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
