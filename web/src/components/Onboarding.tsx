import { Code } from './ui';

/** Onboarding tells a newcomer exactly how to send each kind of data to this Vispyr. */
export function Onboarding({ compact }: { compact?: boolean }) {
  const host = location.hostname || 'localhost';
  return (
    <div class={'onboarding' + (compact ? ' compact' : '')} data-testid="onboarding">
      {!compact && (
        <>
          <h1>Send your first data to Vispyr</h1>
          <p class="lead">
            Vispyr is listening. Point your applications at it with the standard protocols — no agent of ours needed. Traces, metrics and profiles show up here within seconds.
          </p>
        </>
      )}
      <div class="steps">
        <div class="step">
          <h3>1 · Traces & metrics with OpenTelemetry</h3>
          <p>
            Any OpenTelemetry SDK or Collector: OTLP/gRPC on <b>{host}:4317</b>, OTLP/HTTP on <b>http://{host}:4318</b>.
          </p>
          <Code>{`export OTEL_EXPORTER_OTLP_ENDPOINT=http://${host}:4318
export OTEL_SERVICE_NAME=checkout
# then start your instrumented app as usual`}</Code>
          <p>No app at hand? Generate test traces:</p>
          <Code>{`go install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@latest
telemetrygen traces --otlp-insecure --otlp-endpoint ${host}:4317 \\
  --service checkout --rate 20 --duration 5m`}</Code>
        </div>
        <div class="step">
          <h3>2 · Host and Prometheus metrics</h3>
          <p>
            Prometheus or Grafana Alloy remote-write to <b>http://{host}:9090/api/v1/write</b>; node_exporter metrics fill the host panels.
          </p>
          <Code>{`# prometheus.yml
scrape_configs:
  - job_name: node
    static_configs: [{ targets: ['localhost:9100'] }]
remote_write:
  - url: http://${host}:9090/api/v1/write`}</Code>
        </div>
        <div class="step">
          <h3>3 · Continuous profiling</h3>
          <p>
            Pyroscope SDKs push to <b>http://{host}:4040</b> (or the ingest port 9999).
          </p>
          <Code>{`// Go: github.com/grafana/pyroscope-go
pyroscope.Start(pyroscope.Config{
  ApplicationName: "checkout",
  ServerAddress:   "http://${host}:4040",
})`}</Code>
          <Code>{`// Node.js: @pyroscope/nodejs
Pyroscope.init({ serverAddress: 'http://${host}:4040', appName: 'checkout' })
Pyroscope.start()`}</Code>
        </div>
      </div>
    </div>
  );
}
