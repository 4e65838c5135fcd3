# The web app and the Sheets mirror worker share this image; compose.yaml runs both.
FROM python:3.13-slim AS build

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never

RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir uv

WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY . .
# collectstatic and compilemessages need settings, not secrets: a throwaway key
# satisfies the DEBUG-off checks at build time only.
RUN DJANGO_SECRET_KEY=build-only DJANGO_ALLOWED_HOSTS=build.invalid \
    .venv/bin/python manage.py compilemessages --ignore=.venv \
    && DJANGO_SECRET_KEY=build-only DJANGO_ALLOWED_HOSTS=build.invalid \
    .venv/bin/python manage.py collectstatic --noinput


FROM python:3.13-slim

ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    DJANGO_DEBUG=0 \
    GUNICORN_BIND=0.0.0.0:8000 \
    DJANGO_VAR_DIR=/app/var

RUN groupadd --system survey && useradd --system --gid survey --home /app survey
WORKDIR /app
COPY --from=build --chown=survey:survey /app /app
RUN mkdir -p /app/var && chown survey:survey /app/var

USER survey
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status == 200 else 1)"]

CMD ["gunicorn", "-c", "gunicorn.conf.py"]
