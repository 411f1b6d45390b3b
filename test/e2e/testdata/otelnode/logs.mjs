// Sends log records with the OpenTelemetry JS SDK (NodeSDK and the OTLP log
// exporters), each emitted inside a span's context, and prints that span's
// {"traceId", "spanId"}. Driven by test/e2e TestLogsFromOTelNodeSDK:
//   node logs.mjs <http|grpc> <endpoint URL> <service.name> <count>
import { randomBytes } from 'node:crypto';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { OTLPLogExporter as HTTPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as GRPCLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { logs, SeverityNumber } from '@opentelemetry/api-logs';
import { trace, context, TraceFlags } from '@opentelemetry/api';

const [protocol, endpoint, service, count] = process.argv.slice(2);
const exporter = protocol === 'grpc'
  ? new GRPCLogExporter({ url: endpoint })
  : new HTTPLogExporter({ url: endpoint + '/v1/logs' });
const sdk = new NodeSDK({
  resource: resourceFromAttributes({ 'service.name': service, 'deployment.environment': 'e2e', 'host.name': 'node-host' }),
  logRecordProcessors: [new SimpleLogRecordProcessor(exporter)],
  instrumentations: [],
});
sdk.start();

const span = { traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), traceFlags: TraceFlags.SAMPLED };
const ctx = trace.setSpanContext(context.active(), span);
const logger = logs.getLogger('checkout-js', '1.0.0');
for (let i = 0; i < Number(count); i++) {
  logger.emit({
    context: ctx,
    severityNumber: SeverityNumber.WARN,
    severityText: 'WARN',
    body: `payment retried ${i}`,
    attributes: { 'order.id': `o-${i}` },
  });
}
await sdk.shutdown();
console.log(JSON.stringify({ traceId: span.traceId, spanId: span.spanId }));
