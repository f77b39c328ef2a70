import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { defaultTextMapGetter, defaultTextMapSetter, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { W3CTraceContext } from '../../src/tracing/trace-context.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';
const propagator = new W3CTraceContext();
const extract = (headers: Record<string, string | string[]>) => trace.getSpanContext(propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter));

describe('W3C traceparent', () => {
  it('a valid header gives the remote parent, sampled flag and tracestate', () => {
    const span = extract({ traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'vendor=a,other=b' });
    assert.deepEqual({ ...span, traceState: span?.traceState?.serialize() }, { traceId: TRACE, spanId: PARENT, traceFlags: 1, isRemote: true, traceState: 'vendor=a,other=b' });
    assert.equal(extract({ traceparent: `00-${TRACE}-${PARENT}-00` })?.traceFlags, 0);
  });

  it('later versions are read by their first four fields', () => {
    assert.equal(extract({ traceparent: `01-${TRACE}-${PARENT}-01-extra` })?.traceId, TRACE);
  });

  it('malformed headers are ignored: a new trace starts', () => {
    for (const bad of [
      `ff-${TRACE}-${PARENT}-01`, // version ff is invalid
      `00-${TRACE}-${PARENT}-01-extra`, // version 00 has exactly four fields
      `00-${'0'.repeat(32)}-${PARENT}-01`, // all-zero trace id
      `00-${TRACE}-${'0'.repeat(16)}-01`, // all-zero parent id
      `00-${TRACE.toUpperCase()}-${PARENT}-01`, // upper-case hex
      `00-${TRACE}-${PARENT}`,
      'garbage',
    ]) {
      assert.equal(extract({ traceparent: bad }), undefined, bad);
    }
    assert.equal(extract({ traceparent: [`00-${TRACE}-${PARENT}-01`, `00-${TRACE}-${PARENT}-01`] }), undefined, 'two traceparent headers');
  });

  it('injects the active span as a traceparent', () => {
    const ctx = trace.setSpanContext(ROOT_CONTEXT, { traceId: TRACE, spanId: PARENT, traceFlags: 1 });
    const carrier: Record<string, string> = {};
    propagator.inject(ctx, carrier, defaultTextMapSetter);
    assert.deepEqual(carrier, { traceparent: `00-${TRACE}-${PARENT}-01` });
  });
});
