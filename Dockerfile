# vispyr: one static binary with the UI embedded.
# docker build -t vispyr . && docker run -p 4317:4317 -p 4318:4318 -p 9090:9090 -p 3000:3000 vispyr
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

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /vispyr /vispyr
VOLUME /var/lib/vispyr
EXPOSE 4317 4318 9090 9999 4040 3200 3000 12345 13133
ENTRYPOINT ["/vispyr"]
CMD ["serve", "--data-dir", "/var/lib/vispyr"]
