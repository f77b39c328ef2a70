/**
 * W3C Trace Context (`traceparent`, `tracestate`), the propagator OTEL_PROPAGATORS=tracecontext
 * names: an incoming request whose `traceparent` is valid gets its span in the caller's trace.
 * A malformed header is ignored (the request starts a new trace), as the W3C spec asks.
 */
import {
  createTraceState,
  isSpanContextValid,
  trace,
  TraceFlags,
  type Context,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
} from '@opentelemetry/api';

const TRACEPARENT = 'traceparent';
const TRACESTATE = 'tracestate';
// version-traceid-parentid-flags; versions after 00 may append fields after a '-'.
const PATTERN = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

export class W3CTraceContext implements TextMapPropagator {
  inject(context: Context, carrier: unknown, setter: TextMapSetter): void {
    const span = trace.getSpanContext(context);
    if (!span || !isSpanContextValid(span)) return;
    const flags = (span.traceFlags & TraceFlags.SAMPLED).toString(16).padStart(2, '0');
    setter.set(carrier, TRACEPARENT, `00-${span.traceId}-${span.spanId}-${flags}`);
    const state = span.traceState?.serialize();
    if (state) setter.set(carrier, TRACESTATE, state);
  }

  extract(context: Context, carrier: unknown, getter: TextMapGetter): Context {
    const header = getter.get(carrier, TRACEPARENT);
    // Two traceparent headers cannot be told apart: neither is trusted.
    if (Array.isArray(header) && header.length !== 1) return context;
    const m = PATTERN.exec((Array.isArray(header) ? header[0] : header)?.trim() ?? '');
    if (!m || m[1] === 'ff' || (m[1] === '00' && m[5] !== undefined)) return context;
    const parent = { traceId: m[2], spanId: m[3], traceFlags: parseInt(m[4], 16) & TraceFlags.SAMPLED, isRemote: true };
    if (!isSpanContextValid(parent)) return context; // all-zero ids
    const state = getter.get(carrier, TRACESTATE);
    const traceState = state === undefined ? undefined : createTraceState(Array.isArray(state) ? state.join(',') : state);
    return trace.setSpanContext(context, { ...parent, traceState });
  }

  fields(): string[] {
    return [TRACEPARENT, TRACESTATE];
  }
}
