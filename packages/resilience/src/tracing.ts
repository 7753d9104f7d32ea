/** OpenTelemetry span events: a no-op without an SDK. Internal. */
import { type Attributes, trace } from '@opentelemetry/api';

export function spanEvent(name: string, attributes: Attributes): void {
  const span = trace.getActiveSpan();
  if (span === undefined || !span.isRecording()) return;
  span.addEvent(name, attributes);
}
