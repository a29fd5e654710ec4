# Build stage: compile wheels for the app and its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY alembic ./alembic
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: no compilers, a non-root user, the same start command as the README.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SAMPLAN_DATA_DIR=/data
RUN groupadd --system samplan && useradd --system --gid samplan --home /app samplan \
    && mkdir -p /data && chown samplan:samplan /data
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
# Migrations are located next to the installed package's parent; ship them beside /app.
COPY --chown=samplan:samplan alembic ./alembic
COPY --chown=samplan:samplan alembic.ini ./
USER samplan
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health').status==200 else 1)"
# `samplan serve` runs the migrations before it starts serving.
CMD ["samplan", "serve", "--host", "0.0.0.0", "--port", "8000"]
