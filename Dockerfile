# syntax=docker/dockerfile:1
# Build: docker build --build-arg PG_MAJOR=18 -t hubexport .
# PG_MAJOR picks the pg_dump/pg_restore the image carries; match it to the
# hub's PostgreSQL server (CCH ships PostgreSQL 18).
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/hubexport ./cmd/hubexport

FROM debian:bookworm-slim
ARG PG_MAJOR=18
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl gnupg; \
    install -d /usr/share/postgresql-common/pgdg; \
    curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc https://www.postgresql.org/media/keys/ACCC4CF8.asc; \
    echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" > /etc/apt/sources.list.d/pgdg.list; \
    apt-get update; \
    apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}"; \
    apt-get purge -y curl gnupg; apt-get autoremove -y; rm -rf /var/lib/apt/lists/*; \
    useradd --system --uid 10001 --home /var/lib/hubexport --create-home hubexport
ENV PATH="/usr/lib/postgresql/${PG_MAJOR}/bin:${PATH}" \
    STORAGE_URL="file:///var/lib/hubexport/exports"
COPY --from=build /out/hubexport /usr/local/bin/hubexport
USER hubexport
WORKDIR /var/lib/hubexport
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD ["/usr/local/bin/hubexport", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/hubexport"]
CMD ["serve"]
