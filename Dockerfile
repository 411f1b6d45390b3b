# vispyr: one static binary with the UI embedded.
# docker build -t vispyr . && docker run -p 4317:4317 -p 4318:4318 -p 9090:9090 -p 9999:9999 -p 4040:4040 -p 3200:3200 -p 3100:3100 -p 3000:3000 vispyr
FROM node:20-bookworm AS ui
WORKDIR /src
COPY web/package.json web/package-lock.json web/
RUN cd web && npm ci --no-audit --no-fund
COPY web/ web/
COPY internal/ui/ internal/ui/
RUN bash web/build.sh

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=ui /src/internal/ui/dist/ internal/ui/dist/
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /vispyr ./cmd/vispyr
# The data dir must exist in the image, owned by the user Vispyr runs as: a
# volume mounted there starts as a copy of it (owner included). Left to Docker,
# it would be created root-owned and nonroot could not write it.
RUN mkdir -p /out/var/lib/vispyr

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /vispyr /vispyr
# 65532 is distroless's nonroot user.
COPY --from=build --chown=65532:65532 /out/var/lib/vispyr /var/lib/vispyr
USER 65532:65532
VOLUME /var/lib/vispyr
EXPOSE 4317 4318 9090 9999 4040 3200 3100 3000 12345 13133
# No shell or curl in distroless: the binary probes its own health port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=5 \
  CMD ["/vispyr", "healthcheck", "http://127.0.0.1:13133/health/status"]
ENTRYPOINT ["/vispyr"]
CMD ["serve", "--data-dir", "/var/lib/vispyr"]
