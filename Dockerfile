# Build a static binary, then run it as a non-root user on a minimal image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/vpcflow-grapherd . && mkdir -p /out/data

# Debian slim rather than distroless: SVG views run Graphviz (dot, sfdp) as
# a process. The user is distroless's nonroot (65532), so data folders made
# by earlier images keep their owner.
FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends graphviz ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 nonroot \
    && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin nonroot
COPY --from=build /out/vpcflow-grapherd /vpcflow-grapherd
COPY --from=build /src/testdata/flowlogs /sample/flowlogs
# The data folder belongs to the user the service runs as (distroless nonroot).
COPY --from=build --chown=65532:65532 /out/data /data
ENV GRAPHERD_DATA_DIR=/data \
    RUNTIME_HTTPSERVER_ADDRESS=:8080
VOLUME /data
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/vpcflow-grapherd"]
