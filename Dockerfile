# The production image: one image for the api, worker and beat services.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN pip install --no-cache-dir uv && useradd --create-home --uid 10001 fulfill
WORKDIR /app

# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml uv.lock README.md ./
COPY routing/pyproject.toml routing/
COPY carriers/pyproject.toml carriers/
RUN mkdir -p src/fulfill routing/src/fulfill_routing carriers/src/fulfill_carriers \
    && uv sync --frozen --no-dev --extra monitoring --no-install-workspace

COPY . .
RUN uv sync --frozen --no-dev --extra monitoring

# The data dir (beat's schedule, the default Maildir) belongs to the user the services run as; a
# named volume mounted here starts with this directory's owner. Each service's health check is in
# docker-compose.yml: one for all would probe the API's port in the worker and beat too.
RUN mkdir -p /data && chown fulfill:fulfill /data
VOLUME ["/data"]

USER fulfill
EXPOSE 8000
# Proxies are trusted by the service itself (FULFILL_TRUSTED_PROXIES), not by uvicorn.
CMD ["uvicorn", "fulfill.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--no-proxy-headers"]
