# routelab: one static binary; every service in docker-compose.yml runs it
# with a different subcommand.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/routelab ./cmd/routelab

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tesseract-ocr tesseract-ocr-eng \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data routelab \
 && mkdir -p /data && chown routelab /data
COPY --from=build /out/routelab /usr/local/bin/routelab
USER routelab
WORKDIR /data
VOLUME /data
ENTRYPOINT ["routelab"]
CMD ["--help"]
