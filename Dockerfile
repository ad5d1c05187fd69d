# syntax=docker/dockerfile:1
# Build: docker build --build-arg PG_MAJOR=18 -t hubexport .
# PG_MAJOR picks the pg_dump/pg_restore the image carries; match it to the
# hub's PostgreSQL server (CCH ships PostgreSQL 18).
ARG GO_VERSION=1.26
ARG PG_MAJOR=18

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/hubexport ./cmd/hubexport

# The runtime is the official postgres image of PG_MAJOR: its pg_dump and
# pg_restore, with the libraries they link, are the client tools, so the
# build fetches no apt repository. Its server is never started (the
# entrypoint is hubexport's); the image's VOLUME /var/lib/postgresql stays
# an empty anonymous volume.
# The image sets PG_MAJOR itself; the check fails the build if its client
# tools cannot run.
FROM postgres:${PG_MAJOR}-bookworm
RUN set -eux; \
    pg_dump --version | grep -q " ${PG_MAJOR}\."; \
    pg_restore --version | grep -q " ${PG_MAJOR}\."; \
    useradd --system --uid 10001 --home /var/lib/hubexport --create-home hubexport
# S3 and webhooks over HTTPS need a CA bundle, which the postgres image
# does not promise to keep.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PATH="/usr/lib/postgresql/${PG_MAJOR}/bin:${PATH}" \
    STORAGE_URL="file:///var/lib/hubexport/exports"
COPY --from=build /out/hubexport /usr/local/bin/hubexport
USER hubexport
WORKDIR /var/lib/hubexport
EXPOSE 8080
# The postgres image stops its server with SIGINT; hubexport drains on SIGTERM.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s CMD ["/usr/local/bin/hubexport", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/hubexport"]
CMD ["serve"]
