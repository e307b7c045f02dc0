# The stephook binary (worker, receiver, CLI) on a slim Debian base.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p stephook \
    && strip target/release/stephook

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 stephook
COPY --from=build /src/target/release/stephook /usr/local/bin/stephook
USER stephook
WORKDIR /home/stephook
ENTRYPOINT []
CMD ["stephook", "worker"]
