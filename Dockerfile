# syntax=docker/dockerfile:1
# One image for every OEC Sync service; the sub-command picks the role:
#   docker run --rm oec-sync:0.1.0 indexer --port 8081
# docs/operations.md shows it in docker-compose.yml and k8s/.

# --- build: wheels for the package and its dependencies, no compilers in the final image ---
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml ./
COPY common ./common
COPY runtime ./runtime
COPY services ./services
RUN pip wheel --wheel-dir /wheels .

# --- runtime ---
FROM python:3.11-slim-bookworm
# git: the indexer reads OEC at pinned commits, the publisher writes and pushes branches.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid/gid so that volumes, fsGroup and runAsUser agree everywhere.
ARG UID=10001
RUN groupadd --system --gid "${UID}" oec \
    && useradd --system --uid "${UID}" --gid oec --home-dir /home/oec --create-home \
        --shell /usr/sbin/nologin oec

COPY --from=build /wheels /wheels
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --no-index --find-links /wheels oec-sync \
    && rm -rf /wheels

# The data directory and the archive inside it belong to the service user: an empty named
# volume mounted there takes this ownership.
RUN mkdir -p /var/lib/oec-sync/snapshots && chown -R oec:oec /var/lib/oec-sync

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OEC_SYNC_DATA_DIR=/var/lib/oec-sync \
    OEC_SYNC_OEC_REPO=/var/lib/oec-sync/open_exoplanet_catalogue

USER 10001:10001
WORKDIR /var/lib/oec-sync
# Status APIs: indexer 8081, merger 8082, publisher 8083 (by convention, set with --port).
EXPOSE 8081 8082 8083
ENTRYPOINT ["oec-sync"]
CMD ["--help"]
