# Build: the same cargo command as the README.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin orderflow

# Run: slim, non-root, data and inbox as volumes.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent orderflow \
 && mkdir -p /data /inbox \
 && chown orderflow /data /inbox
COPY --from=build /src/target/release/orderflow /usr/local/bin/orderflow
USER orderflow
ENV ORDERFLOW_BIND=0.0.0.0:8080 \
    ORDERFLOW_DATA_DIR=/data \
    ORDERFLOW_INBOX=/inbox
VOLUME ["/data", "/inbox"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["orderflow"]
CMD ["serve"]
