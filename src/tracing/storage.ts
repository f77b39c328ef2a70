/**
 * A storage driver that makes one span per call of the driver it wraps, named and described as
 * Distribution 3 names its storage spans (GetContent, PutContent, Reader, Writer, Stat, List, Move,
 * Delete, RedirectURL, Walk; `io.cncf.distribution.storage.*` attributes), so the same trace queries
 * work on both. Spans are made only inside a sampled request: background work (garbage collection,
 * the notification queue, health checks) makes none. A Reader span lasts until its stream ends,
 * fails or is closed; a Writer span lasts the whole writing session, until close, commit or cancel.
 */
import { finished, type Readable, type Writable } from 'node:stream';
import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { isNotFound, type FileInfo, type FileWriter, type StorageDriver } from '../storage/driver.js';

const P = 'io.cncf.distribution.storage.';

export function traceDriver(driver: StorageDriver, tracer: Tracer): StorageDriver {
  return new TracedDriver(driver, tracer);
}

class TracedDriver implements StorageDriver {
  readonly name: string;
  /** Present only when the wrapped driver has it: callers test for it to pick the fast path. */
  readonly sendTo?: (path: string, offset: number, length: number | undefined, destination: Writable) => Promise<void>;

  constructor(
    private readonly inner: StorageDriver,
    private readonly tracer: Tracer,
  ) {
    this.name = inner.name;
    const sendTo = inner.sendTo?.bind(inner);
    if (sendTo) {
      // Wharf's fast path for what Distribution does with Reader: one span of the same name.
      this.sendTo = (path, offset, length, destination) =>
        this.traced('Reader', readAttributes(path, offset, length), () => sendTo(path, offset, length, destination));
    }
  }

  /** A child of the active span, or none when no sampled span is active. */
  private start(name: string, attributes: Attributes): Span | undefined {
    if (!trace.getSpan(context.active())?.isRecording()) return undefined;
    return this.tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes: { [`${P}driver.name`]: this.name, ...attributes } });
  }

  private async traced<T>(name: string, attributes: Attributes, work: () => Promise<T>): Promise<T> {
    const span = this.start(name, attributes);
    if (!span) return work();
    try {
      return await context.with(trace.setSpan(context.active(), span), work);
    } catch (err) {
      failed(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  getContent(path: string): Promise<Buffer> {
    return this.traced('GetContent', { [`${P}path`]: path }, () => this.inner.getContent(path));
  }

  putContent(path: string, content: Buffer): Promise<void> {
    return this.traced('PutContent', { [`${P}path`]: path, [`${P}content.length`]: content.length }, () => this.inner.putContent(path, content));
  }

  async reader(path: string, offset?: number, length?: number): Promise<Readable> {
    const span = this.start('Reader', readAttributes(path, offset ?? 0, length));
    if (!span) return this.inner.reader(path, offset, length);
    let stream: Readable;
    try {
      stream = await context.with(trace.setSpan(context.active(), span), () => this.inner.reader(path, offset, length));
    } catch (err) {
      failed(span, err);
      span.end();
      throw err;
    }
    finished(stream, (err) => {
      if ((err as NodeJS.ErrnoException | undefined)?.code === 'ERR_STREAM_PREMATURE_CLOSE') span.addEvent('closed before the end (the client went away)');
      else if (err) failed(span, err);
      span.end();
    });
    return stream;
  }

  async writer(path: string, append: boolean): Promise<FileWriter> {
    const span = this.start('Writer', { [`${P}path`]: path, [`${P}append`]: append });
    if (!span) return this.inner.writer(path, append);
    let w: FileWriter;
    try {
      w = await context.with(trace.setSpan(context.active(), span), () => this.inner.writer(path, append));
    } catch (err) {
      failed(span, err);
      span.end();
      throw err;
    }
    return new TracedWriter(w, span, this.tracer, this.name);
  }

  stat(path: string): Promise<FileInfo> {
    return this.traced('Stat', { [`${P}path`]: path }, () => this.inner.stat(path));
  }

  list(path: string): Promise<string[]> {
    return this.traced('List', { [`${P}path`]: path }, () => this.inner.list(path));
  }

  move(source: string, dest: string): Promise<void> {
    return this.traced('Move', { [`${P}source.path`]: source, [`${P}dest.path`]: dest }, () => this.inner.move(source, dest));
  }

  delete(path: string): Promise<void> {
    return this.traced('Delete', { [`${P}path`]: path }, () => this.inner.delete(path));
  }

  redirectURL(...args: Parameters<StorageDriver['redirectURL']>): Promise<string | null> {
    return this.traced('RedirectURL', { [`${P}path`]: args[1] }, () => this.inner.redirectURL(...args));
  }

  walk(path: string, visit: (info: FileInfo) => Promise<void | 'skip'> | void | 'skip'): Promise<void> {
    return this.traced('Walk', { [`${P}path`]: path }, () => this.inner.walk(path, visit));
  }
}

/** One writing session: its span ends with close, commit or cancel; the commit gets a child span. */
class TracedWriter implements FileWriter {
  private readonly initialSize: number;
  private ended = false;

  constructor(
    private readonly w: FileWriter,
    private readonly span: Span,
    private readonly tracer: Tracer,
    private readonly driverName: string,
  ) {
    this.initialSize = w.size;
  }

  get size(): number {
    return this.w.size;
  }

  get releasesChunks(): boolean | undefined {
    return this.w.releasesChunks;
  }

  write(chunk: Buffer): Promise<void> {
    return this.w.write(chunk).catch((err: unknown) => {
      failed(this.span, err);
      throw err;
    });
  }

  close(): Promise<void> {
    return this.finish('close', () => this.w.close());
  }

  async commit(): Promise<void> {
    const parent = trace.setSpan(context.active(), this.span);
    const commit = this.tracer.startSpan('Commit', { kind: SpanKind.INTERNAL, attributes: { [`${P}driver.name`]: this.driverName } }, parent);
    await this.finish('commit', async () => {
      try {
        await context.with(trace.setSpan(parent, commit), () => this.w.commit());
      } catch (err) {
        failed(commit, err);
        throw err;
      } finally {
        commit.end(); // before the Writer span, its parent
      }
    });
  }

  cancel(): Promise<void> {
    return this.finish('cancel', () => this.w.cancel());
  }

  private async finish(how: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      failed(this.span, err);
      throw err;
    } finally {
      // commit then close is allowed: the span ends with the first.
      if (!this.ended) {
        this.ended = true;
        this.span.setAttributes({ 'wharf.storage.writer.end': how, 'wharf.storage.bytes_written': this.w.size - this.initialSize });
        this.span.end();
      }
    }
  }
}

function readAttributes(path: string, offset: number, length: number | undefined): Attributes {
  return { [`${P}path`]: path, [`${P}offset`]: offset, ...(length !== undefined && { [`${P}length`]: length }) };
}

/** A missing path is an answer (existence checks, 404s), not a failure of the storage. */
function failed(span: Span, err: unknown): void {
  if (isNotFound(err)) {
    span.setAttribute('wharf.storage.not_found', true);
    return;
  }
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}
