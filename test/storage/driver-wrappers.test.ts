// The metrics and tracing wrappers must not hide what a wrapped writer promises: a writer that
// copies what it is given (releasesChunks) lets the proxy hand chunks over without copying them.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Histogram, Registry as PromRegistry } from 'prom-client';
import { context, trace } from '@opentelemetry/api';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { instrumentDriver } from '../../src/metrics/storage.js';
import { traceDriver } from '../../src/tracing/storage.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { InMemoryDriver } from '../../src/storage/inmemory.js';
import type { StorageDriver } from '../../src/storage/driver.js';

const base = mkdtempSync(join(tmpdir(), 'wharf-wrappers-'));
after(() => rmSync(base, { recursive: true, force: true }));

const histogram = new Histogram({ name: 'wrapper_test_seconds', help: 'x', labelNames: ['driver', 'action'] as const, registers: [new PromRegistry()] });
const provider = new NodeTracerProvider();
provider.register(); // a context manager, so a span can be made active
const tracer = provider.getTracer('test');
const wrappers: [string, (d: StorageDriver) => StorageDriver][] = [
  ['metrics', (d) => instrumentDriver(d, histogram)],
  ['tracing', (d) => traceDriver(d, tracer)],
];

describe('storage driver wrappers keep the writer’s promises', () => {
  for (const [label, wrap] of wrappers) {
    it(`${label}: releasesChunks passes through, and a reused chunk does not change what was written`, async () => {
      const driver = wrap(new FilesystemDriver({ rootdirectory: join(base, label) }));
      // Inside a sampled span, so the tracing wrapper really wraps the writer.
      const span = tracer.startSpan('request');
      await context.with(trace.setSpan(context.active(), span), async () => {
        const w = await driver.writer('/a/file', false);
        assert.equal(w.releasesChunks, true);
        const chunk = Buffer.from('first');
        await w.write(chunk);
        chunk.write('XXXXX');
        await w.write(Buffer.from('-second'));
        await w.commit();
      });
      span.end();
      assert.equal((await driver.getContent('/a/file')).toString(), 'first-second');
      // A writer that keeps chunks says nothing, wrapped or not.
      const plain = await new InMemoryDriver().writer('/b', false);
      const wrapped = await context.with(trace.setSpan(context.active(), tracer.startSpan('r')), () => wrap(new InMemoryDriver()).writer('/b', false));
      assert.equal(wrapped.releasesChunks, plain.releasesChunks);
      await Promise.all([plain.cancel(), wrapped.cancel()]);
    });
  }
});
