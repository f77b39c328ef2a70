/**
 * The storage-driver conformance suite, in the spirit of Distribution's
 * registry/storage/driver/testsuites: every driver runs it unchanged.
 *
 *   runDriverConformance('filesystem', async () => ({ driver, cleanup }), { largeFileBytes });
 *
 * One driver instance serves the whole suite. Each test works below its own random top-level
 * directory and deletes it when done; after every test the root must list empty, so a driver
 * (or a test) that leaves anything behind fails right there.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Writable, type Readable } from 'node:stream';
import {
  InvalidOffsetError,
  InvalidPathError,
  PathNotFoundError,
  StorageError,
  type FileInfo,
  type StorageDriver,
} from '../../src/storage/driver.js';

export interface DriverFactoryResult {
  driver: StorageDriver;
  cleanup: () => Promise<void>;
}

export interface ConformanceOptions {
  /** Size of the file streamed through a writer in the large-file test. Default 16 MiB. */
  largeFileBytes?: number;
}

const MiB = 1024 * 1024;

type ErrorClass = typeof PathNotFoundError | typeof InvalidPathError | typeof InvalidOffsetError;

/** Paths every method must refuse with InvalidPathError. */
export const INVALID_PATHS: readonly string[] = [
  '',
  'abc',
  'abc/def',
  './abc',
  '../abc',
  '//abc',
  '/abc//def',
  '/abc/',
  '/abc/def/',
  '//',
  '/.',
  '/..',
  '/abc/.',
  '/abc/..',
  '/abc/./def',
  '/abc/../def',
  '/../etc/passwd',
  '/a\0b',
  '/abc\0',
  '/ünïcode',
  '/日本',
  '/a b',
  ' /abc',
  '/abc ',
  '/a:b',
  '/a\\b',
  '\\abc',
  '/a+b',
  '/a~b',
  '/a%2Fb',
  '/a\nb',
  '/a*b',
  '/a?b',
  '/a@b',
  '/a#b',
];

/** Valid names with every allowed character class, and some odd-looking but legal shapes. */
const VALID_NAMES: readonly string[] = [
  'a',
  '2',
  'a.a',
  '0-9',
  'abc_123',
  '1.2.3.4.5-6_zyx',
  '.abc',
  'abc.',
  '...',
  '..abc',
  'a--b',
  'a-.b',
  '_.abc',
  '-',
  '_',
  'Docker-Registry',
  'ABCxyz',
  'sha256',
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
];

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

async function readAll(stream: Readable): Promise<Buffer> {
  assert.equal(stream.readableObjectMode, false, 'a reader is a byte stream, not object mode');
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    assert.ok(Buffer.isBuffer(chunk), 'a reader yields Buffers (a byte stream, not object mode)');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function sha256Of(stream: Readable): Promise<{ digest: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { digest: hash.digest('hex'), bytes };
}

/** Run `tasks` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await task(items[i], i);
    }
  });
  await Promise.all(workers);
}

export function runDriverConformance(
  name: string,
  makeDriver: () => Promise<DriverFactoryResult>,
  opts: ConformanceOptions = {},
): void {
  const largeFileBytes = opts.largeFileBytes ?? 16 * MiB;
  /** Distribution uses 10 MiB "large" append chunks so object stores span several parts. */
  const largeAppendChunk = Math.max(64 * 1024, Math.min(10 * MiB, Math.floor(largeFileBytes / 4)));

  describe(`storage driver conformance: ${name}`, () => {
    let driver: StorageDriver;
    let cleanup: () => Promise<void> = async () => undefined;

    before(async () => {
      ({ driver, cleanup } = await makeDriver());
    });

    after(async () => {
      await cleanup();
    });

    // Distribution's TearDownTest: nothing may be left behind in the root after a test.
    afterEach(async () => {
      // A root that is missing when empty is reported by the root test; here it only means "empty".
      const left = await driver.list('/').catch((err) => {
        if (err instanceof PathNotFoundError) return [] as string[];
        throw err;
      });
      for (const p of left) await driver.delete(p).catch(() => undefined); // don't cascade into later tests
      assert.deepEqual(left, [], `${name} left paths behind in its root`);
    });

    /** A fresh top-level directory for one test, deleted afterwards whatever happens. */
    async function inDir(work: (dir: string) => Promise<void>): Promise<void> {
      const dir = `/conformance-${hex(6)}`;
      try {
        await work(dir);
      } finally {
        await driver.delete(dir).catch((err) => {
          if (!(err instanceof PathNotFoundError)) throw err;
        });
      }
    }

    /** `call` must reject (not throw synchronously) with `Class` naming this driver and `path`. */
    async function expectError(call: () => Promise<unknown>, Class: ErrorClass, path: string, what: string): Promise<StorageError> {
      let promise: Promise<unknown>;
      try {
        promise = call();
      } catch (err) {
        assert.fail(`${what}: threw synchronously instead of rejecting: ${String(err)}`);
      }
      let caught: unknown = null;
      try {
        await promise;
      } catch (err) {
        caught = err;
      }
      assert.ok(caught !== null, `${what}: expected ${Class.name}, but it succeeded`);
      assert.ok(caught instanceof Class, `${what}: expected ${Class.name}, got ${String(caught)}`);
      const err = caught as StorageError;
      assert.equal(err.driver, driver.name, `${what}: error names the driver`);
      assert.equal(err.path, path, `${what}: error names the path`);
      assert.ok(err.message.includes(driver.name), `${what}: message mentions the driver: ${err.message}`);
      return err;
    }

    async function writeAll(path: string, chunks: Buffer[], append = false): Promise<void> {
      const w = await driver.writer(path, append);
      for (const c of chunks) await w.write(c);
      await w.commit();
      await w.close();
    }

    async function readRange(path: string, offset?: number, length?: number): Promise<Buffer> {
      return readAll(await driver.reader(path, offset, length));
    }

    // ---------------------------------------------------------------- root and paths

    describe('root and paths', () => {
      it('the root always exists: list("/") of an empty store is [] and stat("/") is a directory', async () => {
        assert.deepEqual(await driver.list('/'), []);
        const info = await driver.stat('/');
        assert.equal(info.isDir, true);
        assert.equal(info.path, '/');
        await driver.walk('/', () => {
          assert.fail('walk of an empty root visits nothing');
        });
      });

      it('accepts valid paths with every allowed character', async () => {
        await inDir(async (dir) => {
          const content = randomBytes(64);
          for (const n of VALID_NAMES) {
            const p = `${dir}/${n}`;
            await driver.putContent(p, content);
            assert.deepEqual(await driver.getContent(p), content, p);
            const nested = `${dir}/${n}-dir/${n}`;
            await driver.putContent(nested, content);
            assert.deepEqual(await driver.getContent(nested), content, nested);
          }
          const listed = await driver.list(dir);
          const expected = VALID_NAMES.flatMap((n) => [`${dir}/${n}`, `${dir}/${n}-dir`]).sort();
          assert.deepEqual(listed, expected);
        });
      });

      it('every method rejects invalid paths with InvalidPathError', async () => {
        await inDir(async (dir) => {
          const valid = `${dir}/valid`;
          await driver.putContent(valid, Buffer.from('x'));
          for (const bad of INVALID_PATHS) {
            const w = `${JSON.stringify(bad)}`;
            await expectError(() => driver.getContent(bad), InvalidPathError, bad, `getContent ${w}`);
            await expectError(() => driver.putContent(bad, Buffer.from('x')), InvalidPathError, bad, `putContent ${w}`);
            await expectError(() => driver.reader(bad), InvalidPathError, bad, `reader ${w}`);
            await expectError(() => driver.reader(bad, 1, 1), InvalidPathError, bad, `reader(1, 1) ${w}`);
            await expectError(() => driver.writer(bad, false), InvalidPathError, bad, `writer ${w}`);
            await expectError(() => driver.writer(bad, true), InvalidPathError, bad, `writer(append) ${w}`);
            await expectError(() => driver.stat(bad), InvalidPathError, bad, `stat ${w}`);
            await expectError(() => driver.list(bad), InvalidPathError, bad, `list ${w}`);
            await expectError(() => driver.move(bad, `${dir}/dest`), InvalidPathError, bad, `move from ${w}`);
            await expectError(() => driver.move(valid, bad), InvalidPathError, bad, `move to ${w}`);
            await expectError(() => driver.delete(bad), InvalidPathError, bad, `delete ${w}`);
            await expectError(() => driver.redirectURL('GET', bad), InvalidPathError, bad, `redirectURL ${w}`);
            await expectError(() => driver.walk(bad, () => undefined), InvalidPathError, bad, `walk ${w}`);
          }
          // Nothing above may have touched the valid file or created anything.
          assert.deepEqual(await driver.getContent(valid), Buffer.from('x'));
          assert.deepEqual(await driver.list(dir), [valid]);
          await expectError(() => driver.stat(`${dir}/dest`), PathNotFoundError, `${dir}/dest`, 'stat after refused move');
        });
      });

      it('"/" names the root directory only: file operations refuse it', async () => {
        await inDir(async (dir) => {
          await driver.putContent(`${dir}/f`, Buffer.from('keep'));
          await expectError(() => driver.getContent('/'), InvalidPathError, '/', 'getContent /');
          await expectError(() => driver.putContent('/', Buffer.from('x')), InvalidPathError, '/', 'putContent /');
          await expectError(() => driver.reader('/'), InvalidPathError, '/', 'reader /');
          await expectError(() => driver.writer('/', false), InvalidPathError, '/', 'writer /');
          await expectError(() => driver.move('/', `${dir}/g`), InvalidPathError, '/', 'move from /');
          await expectError(() => driver.move(`${dir}/f`, '/'), InvalidPathError, '/', 'move to /');
          await expectError(() => driver.delete('/'), InvalidPathError, '/', 'delete /');
          assert.deepEqual(await driver.getContent(`${dir}/f`), Buffer.from('keep'));
          assert.deepEqual(await driver.list('/'), [dir]);
        });
      });

      it('deep paths work at every level', async () => {
        await inDir(async (dir) => {
          const segments = Array.from({ length: 30 }, (_, i) => `level${i}-${hex(2)}`);
          const dirs: string[] = [];
          let at = dir;
          for (const s of segments) {
            at = `${at}/${s}`;
            dirs.push(at);
          }
          const file = `${at}/file`;
          const content = randomBytes(1000);
          await driver.putContent(file, content);
          assert.deepEqual(await driver.getContent(file), content);
          assert.deepEqual(await readRange(file, 10, 20), content.subarray(10, 30));
          let parent = dir;
          for (const d of dirs) {
            assert.deepEqual(await driver.list(parent), [d]);
            const info = await driver.stat(d);
            assert.equal(info.isDir, true, d);
            parent = d;
          }
          assert.deepEqual(await driver.list(at), [file]);
          await driver.move(file, `${dirs[4]}/moved`);
          assert.deepEqual(await driver.getContent(`${dirs[4]}/moved`), content);
          await driver.delete(dirs[0]);
          await expectError(() => driver.stat(dirs[0]), PathNotFoundError, dirs[0], 'stat of a deleted deep tree');
        });
      });
    });

    // ---------------------------------------------------------------- content

    describe('putContent / getContent', () => {
      const cases: Array<[string, () => Buffer]> = [
        ['empty', () => Buffer.alloc(0)],
        ['one byte', () => Buffer.from('a')],
        ['unicode text', () => Buffer.from('\u00df and \u65e5\u672c', 'utf8')],
        ['non-UTF-8 binary', () => Buffer.from([0x80, 0x80, 0xff, 0x00, 0xfe, 0x00])],
        ['every byte value', () => Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256))],
        ['random 32 bytes', () => randomBytes(32)],
        ['random 1 MiB', () => randomBytes(MiB)],
      ];
      for (const [label, make] of cases) {
        it(`round-trips ${label}`, async () => {
          await inDir(async (dir) => {
            const p = `${dir}/sub/${hex(4)}`;
            const content = make();
            await driver.putContent(p, content);
            const got = await driver.getContent(p);
            assert.ok(Buffer.isBuffer(got));
            assert.deepEqual(got, content);
            assert.deepEqual(await readRange(p), content);
            assert.equal((await driver.stat(p)).size, content.length);
          });
        });
      }

      it('the caller may reuse its buffer after putContent, and mutate what getContent returned', async () => {
        await inDir(async (dir) => {
          const p = `${dir}/f`;
          const content = Buffer.from('original');
          await driver.putContent(p, content);
          content.fill(0x21);
          const got = await driver.getContent(p);
          assert.deepEqual(got, Buffer.from('original'));
          got.fill(0x22);
          assert.deepEqual(await driver.getContent(p), Buffer.from('original'));
        });
      });

      it('overwrites: a smaller content truncates, a larger one replaces (repeatedly)', async () => {
        await inDir(async (dir) => {
          const p = `${dir}/f`;
          for (const size of [4096, 1024, 0, 3, MiB, 2048]) {
            const content = randomBytes(size);
            await driver.putContent(p, content);
            assert.deepEqual(await driver.getContent(p), content, `after putting ${size} bytes`);
            assert.equal((await driver.stat(p)).size, size);
          }
        });
      });

      it('getContent of a missing path, a directory, or below a file is PathNotFoundError', async () => {
        await inDir(async (dir) => {
          const missing = `${dir}/missing/${hex(4)}`;
          await expectError(() => driver.getContent(missing), PathNotFoundError, missing, 'getContent missing');
          await driver.putContent(`${dir}/d/f`, Buffer.from('x'));
          await expectError(() => driver.getContent(`${dir}/d`), PathNotFoundError, `${dir}/d`, 'getContent of a directory');
          const below = `${dir}/d/f/below`;
          await expectError(() => driver.getContent(below), PathNotFoundError, below, 'getContent below a file');
        });
      });
    });

    // ---------------------------------------------------------------- readers

    describe('reader', () => {
      it('reads from offsets: 0, middle, N-1, end (empty), beyond end and negative (InvalidOffsetError)', async () => {
        await inDir(async (dir) => {
          const p = `${dir}/f`;
          const chunk = 32;
          const content = randomBytes(chunk * 3);
          await driver.putContent(p, content);
          assert.deepEqual(await readRange(p), content);
          assert.deepEqual(await readRange(p, 0), content);
          assert.deepEqual(await readRange(p, chunk), content.subarray(chunk));
          assert.deepEqual(await readRange(p, chunk * 2), content.subarray(chunk * 2));
          assert.deepEqual(await readRange(p, chunk * 3 - 1), content.subarray(chunk * 3 - 1));
          assert.deepEqual(await readRange(p, chunk * 3), Buffer.alloc(0), 'offset == size is an empty stream');
          for (const bad of [chunk * 3 + 1, chunk * 100, -1]) {
            const err = await expectError(() => driver.reader(p, bad), InvalidOffsetError, p, `reader offset ${bad}`);
            assert.equal((err as InvalidOffsetError).offset, bad);
            await expectError(() => driver.reader(p, bad, 1), InvalidOffsetError, p, `reader offset ${bad} length 1`);
          }
        });
      });

      it('reads at most `length` bytes, fewer when the file ends first', async () => {
        await inDir(async (dir) => {
          const p = `${dir}/f`;
          const content = randomBytes(1000);
          await driver.putContent(p, content);
          assert.deepEqual(await readRange(p, 0, 10), content.subarray(0, 10));
          assert.deepEqual(await readRange(p, 500, 123), content.subarray(500, 623));
          assert.deepEqual(await readRange(p, 990, 10), content.subarray(990));
          assert.deepEqual(await readRange(p, 990, 50), content.subarray(990), 'length past the end is clipped');
          assert.deepEqual(await readRange(p, 0, 1000), content);
          assert.deepEqual(await readRange(p, 0, 5000), content);
          assert.deepEqual(await readRange(p, 500, 0), Buffer.alloc(0), 'length 0 is empty');
          assert.deepEqual(await readRange(p, 1000, 10), Buffer.alloc(0), 'at the end with a length is empty');
          assert.deepEqual(await readRange(p, 999, 1), content.subarray(999));
        });
      });

      it('reads ranges of a multi-MiB file across read-chunk boundaries', async () => {
        await inDir(async (dir) => {
          const p = `${dir}/f`;
          const content = randomBytes(3 * MiB + 17);
          await driver.putContent(p, content);
          for (const [offset, length] of [
            [MiB - 5, 10],
            [MiB - 1, MiB + 2],
            [0, 2 * MiB],
            [2 * MiB + 3, MiB + 14],
            [3 * MiB, 100],
          ] as const) {
            assert.deepEqual(await readRange(p, offset, length), content.subarray(offset, offset + length), `${offset}+${length}`);
          }
          assert.deepEqual(await readRange(p, MiB + 1), content.subarray(MiB + 1));
        });
      });

      it('sendTo, when the driver has it, writes the same bytes as reader and ends the destination', async () => {
        if (!driver.sendTo) return;
        await inDir(async (dir) => {
          const p = `${dir}/f`;
          const content = randomBytes(3 * MiB + 17);
          await driver.putContent(p, content);
          for (const [offset, length] of [
            [0, undefined],
            [MiB - 1, MiB + 2],
            [2 * MiB + 3, 10 * MiB],
            [3 * MiB + 17, undefined],
          ] as const) {
            const got: Buffer[] = [];
            const sink = new Writable({
              highWaterMark: 1024,
              write(chunk: Buffer, _enc, done) {
                got.push(Buffer.from(chunk)); // the driver may reuse its buffer once we return
                setImmediate(done); // a slow consumer: backpressure must hold
              },
            });
            await driver.sendTo!(p, offset, length, sink);
            const end = length === undefined ? content.length : Math.min(content.length, offset + length);
            assert.deepEqual(Buffer.concat(got), content.subarray(offset, end), `${offset}+${length}`);
            assert.equal(sink.writableEnded, true);
          }
          await expectError(() => driver.sendTo!(`${dir}/missing`, 0, undefined, new Writable({ write: (_c, _e, d) => d() })), PathNotFoundError, `${dir}/missing`, 'sendTo missing');
        });
      });

      it('sendTo stops, without hanging, when the destination is destroyed midway', async () => {
        if (!driver.sendTo) return;
        await inDir(async (dir) => {
          const p = `${dir}/f`;
          await driver.putContent(p, randomBytes(4 * MiB));
          let seen = 0;
          const sink = new Writable({
            write(chunk: Buffer, _enc, done) {
              seen += chunk.length;
              if (seen > MiB) sink.destroy();
              else done();
            },
          });
          await assert.rejects(driver.sendTo!(p, 0, undefined, sink));
          assert.ok(seen < 4 * MiB);
        });
      });

      it('a missing file, a directory, or a path below a file is PathNotFoundError (even with an offset)', async () => {
        await inDir(async (dir) => {
          const missing = `${dir}/missing`;
          await expectError(() => driver.reader(missing), PathNotFoundError, missing, 'reader missing');
          await expectError(() => driver.reader(missing, 64), PathNotFoundError, missing, 'reader missing at 64');
          await driver.putContent(`${dir}/d/f`, Buffer.from('x'));
          await expectError(() => driver.reader(`${dir}/d`), PathNotFoundError, `${dir}/d`, 'reader of a directory');
          const below = `${dir}/d/f/x`;
          await expectError(() => driver.reader(below), PathNotFoundError, below, 'reader below a file');
        });
      });

      it('an empty file reads as an empty stream', async () => {
        await inDir(async (dir) => {
          const p = `${dir}/empty`;
          await driver.putContent(p, Buffer.alloc(0));
          assert.deepEqual(await readRange(p), Buffer.alloc(0));
          assert.deepEqual(await readRange(p, 0, 10), Buffer.alloc(0));
          await expectError(() => driver.reader(p, 1), InvalidOffsetError, p, 'reader offset 1 of an empty file');
        });
      });

      it('concurrent readers of one file at random offsets each get the right bytes', async () => {
        await inDir(async (dir) => {
          const p = `${dir}/f`;
          const size = Math.min(largeFileBytes, 8 * MiB);
          const content = randomBytes(size);
          await driver.putContent(p, content);
          await Promise.all(
            Array.from({ length: 10 }, async (_, i) => {
              const offset = Math.floor(Math.random() * size);
              const length = i % 2 === 0 ? undefined : Math.floor(Math.random() * (size - offset + 10));
              const got = await readRange(p, offset, length);
              const expected = content.subarray(offset, length === undefined ? size : offset + length);
              assert.ok(got.equals(expected), `reader ${i} at ${offset}+${length}`);
            }),
          );
        });
      });
    });

    // ---------------------------------------------------------------- writers

    describe('writer', () => {
      for (const [label, content] of [
        ['one byte', Buffer.from('a')],
        ['unicode', Buffer.from('\u00df', 'utf8')],
        ['non-UTF-8', Buffer.from([0x80, 0x80, 0x80, 0x80])],
        ['32 random bytes', randomBytes(32)],
        ['1 MiB', randomBytes(MiB)],
      ] as const) {
        it(`streams ${label} through a writer; commit makes it visible`, async () => {
          await inDir(async (dir) => {
            const p = `${dir}/sub/f`;
            const w = await driver.writer(p, false);
            assert.equal(w.size, 0);
            await w.write(content);
            assert.equal(w.size, content.length);
            await w.commit();
            await w.close();
            assert.equal(w.size, content.length);
            assert.deepEqual(await driver.getContent(p), content);
            assert.deepEqual(await readRange(p), content);
            const info = await driver.stat(p);
            assert.equal(info.size, content.length);
            assert.equal(info.isDir, false);
            assert.deepEqual(await driver.list(`${dir}/sub`), [p]);
          });
        });
      }

      it('size counts every chunk as it is written', async () => {
        await inDir(async (dir) => {
          const w = await driver.writer(`${dir}/f`, false);
          let expected = 0;
          for (const n of [1, 0, 7, 4096, 3, 100_000]) {
            await w.write(randomBytes(n));
            expected += n;
            assert.equal(w.size, expected);
          }
          await w.commit();
          assert.equal(w.size, expected);
          assert.equal((await driver.stat(`${dir}/f`)).size, expected);
        });
      });

      it('a writer that is not appending replaces an existing file', async () => {
        await inDir(async (dir) => {
          const p = `${dir}/f`;
          await driver.putContent(p, randomBytes(MiB));
          const content = randomBytes(10);
          await writeAll(p, [content]);
          assert.deepEqual(await driver.getContent(p), content);
          assert.equal((await driver.stat(p)).size, 10);
        });
      });

      for (const [label, chunk] of [
        ['small (32 B)', 32],
        [`large (${largeAppendChunk} B)`, largeAppendChunk],
      ] as const) {
        it(`append sessions continue a closed upload: ${label} chunks, three sessions, then commit`, async () => {
          await inDir(async (dir) => {
            const p = `${dir}/_uploads/${hex(8)}/data`;
            const parts = [randomBytes(chunk), randomBytes(chunk), randomBytes(chunk)];

            let w = await driver.writer(p, false);
            await w.write(parts[0]);
            await w.close();
            assert.equal(w.size, chunk);

            w = await driver.writer(p, true);
            assert.equal(w.size, chunk, 'second session starts where the first ended');
            await w.write(parts[1]);
            await w.close();
            assert.equal(w.size, 2 * chunk);

            w = await driver.writer(p, true);
            assert.equal(w.size, 2 * chunk, 'third session starts where the second ended');
            await w.write(parts[2]);
            await w.commit();
            await w.close();
            assert.equal(w.size, 3 * chunk);

            const all = Buffer.concat(parts);
            assert.ok((await driver.getContent(p)).equals(all), 'content is the concatenation of all sessions');
            assert.equal((await driver.stat(p)).size, 3 * chunk);
            assert.ok((await readRange(p, chunk - 1, chunk + 2)).equals(all.subarray(chunk - 1, 2 * chunk + 1)));
          });
        });
      }

      it('an append session can write several chunks and be resumed many times', async () => {
        await inDir(async (dir) => {
          const p = `${dir}/data`;
          const expected: Buffer[] = [];
          let w = await driver.writer(p, false);
          for (let session = 0; session < 6; session++) {
            if (session > 0) w = await driver.writer(p, true);
            assert.equal(w.size, Buffer.concat(expected).length, `session ${session} size`);
            for (let i = 0; i < 3; i++) {
              const c = randomBytes(100 + session * 10 + i);
              expected.push(c);
              await w.write(c);
            }
            if (session === 5) await w.commit();
            await w.close();
          }
          assert.ok((await driver.getContent(p)).equals(Buffer.concat(expected)));
        });
      });

      it('append=true on a path nothing was written to starts an empty file', async () => {
        await inDir(async (dir) => {
          const p = `${dir}/new/data`;
          const w = await driver.writer(p, true);
          assert.equal(w.size, 0);
          await w.write(Buffer.from('hello'));
          await w.commit();
          await w.close();
          assert.deepEqual(await driver.getContent(p), Buffer.from('hello'));
        });
      });

      it('a committed zero-byte stream can then be appended to', async () => {
        await inDir(async (dir) => {
          const p = `${dir}/f`;
          const w = await driver.writer(p, false);
          await w.commit();
          await w.close();
          assert.equal(w.size, 0);
          assert.deepEqual(await readRange(p), Buffer.alloc(0));
          assert.equal((await driver.stat(p)).size, 0);
          const content = randomBytes(32);
          const a = await driver.writer(p, true);
          assert.equal(a.size, 0);
          await a.write(content);
          await a.commit();
          await a.close();
          assert.equal(a.size, 32);
          assert.deepEqual(await readRange(p), content);
        });
      });

      it('zero-byte content from putContent can then be appended to', async () => {
        await inDir(async (dir) => {
          const p = `${dir}/f`;
          await driver.putContent(p, Buffer.alloc(0));
          assert.deepEqual(await readRange(p), Buffer.alloc(0));
          const content = randomBytes(32);
          const a = await driver.writer(p, true);
          assert.equal(a.size, 0);
          await a.write(content);
          await a.commit();
          await a.close();
          assert.deepEqual(await readRange(p), content);
        });
      });

      it('cancel discards the content, in the first session or a resumed one, and spares siblings', async () => {
        await inDir(async (dir) => {
          const sibling = `${dir}/up/sibling`;
          await driver.putContent(sibling, Buffer.from('stay'));

          const p = `${dir}/up/data`;
          let w = await driver.writer(p, false);
          await w.write(randomBytes(1000));
          await w.cancel();
          await expectError(() => driver.stat(p), PathNotFoundError, p, 'stat after cancel');
          await expectError(() => driver.getContent(p), PathNotFoundError, p, 'getContent after cancel');

          w = await driver.writer(p, false);
          await w.write(randomBytes(1000));
          await w.close();
          w = await driver.writer(p, true);
          assert.equal(w.size, 1000);
          await w.write(randomBytes(10));
          await w.cancel();
          await expectError(() => driver.stat(p), PathNotFoundError, p, 'stat after cancelling a resumed session');
          const again = await driver.writer(p, true);
          assert.equal(again.size, 0, 'nothing is left to resume after cancel');
          await again.cancel();

          assert.deepEqual(await driver.getContent(sibling), Buffer.from('stay'));
          assert.deepEqual(await driver.list(`${dir}/up`), [sibling]);
        });
      });

      it('write after close, commit or cancel rejects', async () => {
        await inDir(async (dir) => {
          for (const end of ['close', 'commit', 'cancel'] as const) {
            const p = `${dir}/${end}`;
            const w = await driver.writer(p, false);
            await w.write(Buffer.from('x'));
            await w[end]();
            await assert.rejects(() => w.write(Buffer.from('y')), `write after ${end}`);
            if (end !== 'cancel') assert.deepEqual(await driver.getContent(p), Buffer.from('x'));
          }
        });
      });

      it(`streams a large file (${largeFileBytes} bytes) in uneven chunks and reads it back (sha256)`, async () => {
        await inDir(async (dir) => {
          const p = `${dir}/blobs/sha256/ab/${hex(32)}/data`;
          const hash = createHash('sha256');
          const sizes = [MiB, 3, 256 * 1024 + 1, 4 * MiB + 5, 65_536, 1];
          const keep: Array<{ at: number; data: Buffer }> = [];
          const w = await driver.writer(p, false);
          let written = 0;
          for (let i = 0; written < largeFileBytes; i++) {
            const n = Math.min(sizes[i % sizes.length], largeFileBytes - written);
            const chunk = randomBytes(n); // fresh each time: writers may hold on to chunks
            hash.update(chunk);
            if (i < 3 || written + n === largeFileBytes) keep.push({ at: written, data: chunk });
            await w.write(chunk);
            written += n;
            assert.equal(w.size, written);
          }
          await w.commit();
          await w.close();
          const info = await driver.stat(p);
          assert.equal(info.size, largeFileBytes);
          const back = await sha256Of(await driver.reader(p));
          assert.equal(back.bytes, largeFileBytes);
          assert.equal(back.digest, hash.digest('hex'), 'sha256 of what was read equals what was written');
          // Ranges at kept chunks, including one across the first chunk boundary and the tail.
          for (const { at, data } of keep) {
            assert.ok((await readRange(p, at, data.length)).equals(data), `range at ${at}`);
          }
          if (keep.length >= 2 && keep[0].data.length >= 10 && keep[1].data.length >= 3) {
            const across = Buffer.concat([keep[0].data.subarray(-10), keep[1].data.subarray(0, 3)]);
            assert.ok((await readRange(p, keep[1].at - 10, 13)).equals(across), 'range across a chunk boundary');
          }
          assert.deepEqual(await readRange(p, largeFileBytes), Buffer.alloc(0));
        });
      });
    });

    // ---------------------------------------------------------------- stat

    describe('stat', () => {
      it('of files and directories: path, size, isDir, modTime', async () => {
        await inDir(async (dir) => {
          const d = `${dir}/a/b`;
          const f = `${d}/file`;
          await expectError(() => driver.stat(d), PathNotFoundError, d, 'stat missing directory');
          await expectError(() => driver.stat(f), PathNotFoundError, f, 'stat missing file');

          const before = Date.now();
          const content = randomBytes(4096);
          await driver.putContent(f, content);
          const fi = await driver.stat(f);
          assert.equal(fi.path, f);
          assert.equal(fi.size, 4096);
          assert.equal(fi.isDir, false);
          assert.ok(fi.modTime instanceof Date && !Number.isNaN(fi.modTime.getTime()), 'modTime is a valid Date');
          // Generous bounds: remote clocks drift.
          assert.ok(Math.abs(fi.modTime.getTime() - before) < 15 * 60_000, `modTime ${fi.modTime.toISOString()} is about now`);

          await new Promise((r) => setTimeout(r, 20));
          await driver.putContent(f, randomBytes(100));
          const fi2 = await driver.stat(f);
          assert.equal(fi2.size, 100);
          assert.ok(fi2.modTime.getTime() >= fi.modTime.getTime() - 1000, 'modTime does not go back after a rewrite');

          for (const p of [d, `${dir}/a`, dir]) {
            const di = await driver.stat(p);
            assert.equal(di.path, p);
            assert.equal(di.isDir, true, `${p} is a directory`);
            assert.equal(di.size, 0);
            assert.ok(di.modTime instanceof Date);
          }
          const below = `${f}/x`;
          await expectError(() => driver.stat(below), PathNotFoundError, below, 'stat below a file');
          const prefixOnly = `${d}/fi`;
          await expectError(() => driver.stat(prefixOnly), PathNotFoundError, prefixOnly, 'stat of a name prefix is not a directory');
        });
      });
    });

    // ---------------------------------------------------------------- list

    describe('list', () => {
      it('direct children only, absolute, sorted; files and directories alike', async () => {
        await inDir(async (dir) => {
          const missing = `${dir}/nonexistent`;
          await expectError(() => driver.list(missing), PathNotFoundError, missing, 'list missing');

          const parent = `${dir}/parent`;
          const files = Array.from({ length: 50 }, () => `${parent}/${hex(4)}-${hex(2)}`);
          await pool(files, 8, (f) => driver.putContent(f, randomBytes(16)));
          await driver.putContent(`${parent}/zz-dir/deeper/file`, Buffer.from('x'));
          await driver.putContent(`${parent}/Upper`, Buffer.from('x'));
          await driver.putContent(`${parent}-sibling/file`, Buffer.from('x'));

          assert.deepEqual(await driver.list('/'), [dir]);
          assert.deepEqual(await driver.list(dir), [parent, `${parent}-sibling`]);
          const expected = [...files, `${parent}/zz-dir`, `${parent}/Upper`].sort();
          const listed = await driver.list(parent);
          assert.deepEqual(listed, expected);
          for (let i = 1; i < listed.length; i++) assert.ok(listed[i - 1] < listed[i], 'sorted');
          for (const p of listed) {
            assert.ok(p.startsWith(`${parent}/`) && !p.endsWith('/'), `${p} is absolute, without a trailing '/'`);
            assert.ok(!p.slice(parent.length + 1).includes('/'), `${p} is a direct child`);
          }
          assert.deepEqual(await driver.list(`${parent}/zz-dir`), [`${parent}/zz-dir/deeper`]);
          const file = files[0];
          await expectError(() => driver.list(file), PathNotFoundError, file, 'list of a file');
        });
      });

      it('lists more than 1,000 children (pagination)', async () => {
        await inDir(async (dir) => {
          const parent = `${dir}/many`;
          const count = 1_050;
          const files = Array.from({ length: count }, (_, i) => `${parent}/f${String(i).padStart(5, '0')}`);
          // A few directories among them, so paginated prefixes and objects interleave.
          const subdirs = [7, 500, 1001].map((i) => `${parent}/f${String(i).padStart(5, '0')}-d`);
          await pool(files, 16, (f) => driver.putContent(f, Buffer.from(f)));
          for (const d of subdirs) await driver.putContent(`${d}/x`, Buffer.from('x'));
          const listed = await driver.list(parent);
          assert.equal(listed.length, count + subdirs.length);
          assert.deepEqual(listed, [...files, ...subdirs].sort());
        });
      });
    });

    // ---------------------------------------------------------------- move

    describe('move', () => {
      it('to a new path, creating its parents; the source is gone', async () => {
        await inDir(async (dir) => {
          const src = `${dir}/_uploads/u1/data`;
          const dest = `${dir}/blobs/sha256/ab/abcdef/data`;
          const content = randomBytes(32);
          await driver.putContent(src, content);
          await driver.move(src, dest);
          assert.deepEqual(await driver.getContent(dest), content);
          await expectError(() => driver.getContent(src), PathNotFoundError, src, 'source after move');
          await expectError(() => driver.stat(src), PathNotFoundError, src, 'stat source after move');
        });
      });

      it('over an existing file replaces it', async () => {
        await inDir(async (dir) => {
          const src = `${dir}/src`;
          const dest = `${dir}/dest/f`;
          const content = randomBytes(32);
          await driver.putContent(src, content);
          await driver.putContent(dest, randomBytes(64));
          await driver.move(src, dest);
          assert.deepEqual(await driver.getContent(dest), content);
          assert.equal((await driver.stat(dest)).size, 32);
          await expectError(() => driver.getContent(src), PathNotFoundError, src, 'source after move');
        });
      });

      it('a file written through a writer moves whole', async () => {
        await inDir(async (dir) => {
          const src = `${dir}/up/data`;
          const dest = `${dir}/blob/data`;
          const content = randomBytes(2 * MiB + 3);
          await writeAll(src, [content.subarray(0, MiB), content.subarray(MiB)]);
          await driver.move(src, dest);
          assert.ok((await driver.getContent(dest)).equals(content));
          await expectError(() => driver.reader(src), PathNotFoundError, src, 'reader of the moved source');
        });
      });

      it('a missing source is PathNotFoundError and the destination is untouched', async () => {
        await inDir(async (dir) => {
          const src = `${dir}/missing`;
          const dest = `${dir}/dest`;
          const content = randomBytes(32);
          await driver.putContent(dest, content);
          await expectError(() => driver.move(src, dest), PathNotFoundError, src, 'move of a missing source');
          assert.deepEqual(await driver.getContent(dest), content);
          const nowhere = `${dir}/new/parent/dest`;
          await expectError(() => driver.move(src, nowhere), PathNotFoundError, src, 'move of a missing source to a new place');
          assert.deepEqual(await driver.list(dir), [dest], 'a failed move creates nothing');
        });
      });

      it('moving from below a file fails', async () => {
        await inDir(async (dir) => {
          await driver.putContent(`${dir}/notadir`, randomBytes(32));
          await assert.rejects(() => driver.move(`${dir}/notadir/foo`, `${dir}/notadir/bar`));
          assert.equal((await driver.stat(`${dir}/notadir`)).size, 32);
        });
      });
    });

    // ---------------------------------------------------------------- delete

    describe('delete', () => {
      it('a file; the path is gone, its directory siblings stay', async () => {
        await inDir(async (dir) => {
          const f = `${dir}/d/f`;
          await driver.putContent(f, randomBytes(32));
          await driver.putContent(`${dir}/d/g`, randomBytes(32));
          await driver.delete(f);
          await expectError(() => driver.getContent(f), PathNotFoundError, f, 'getContent after delete');
          await expectError(() => driver.stat(f), PathNotFoundError, f, 'stat after delete');
          await expectError(() => driver.delete(f), PathNotFoundError, f, 'delete twice');
          assert.deepEqual(await driver.list(`${dir}/d`), [`${dir}/d/g`]);
        });
      });

      it('a whole tree', async () => {
        await inDir(async (dir) => {
          const tree = `${dir}/tree`;
          const files = [`${tree}/a`, `${tree}/b/c`, `${tree}/b/d/e`, `${tree}/b/d/f`, `${tree}/g/h/i/j`];
          for (const f of files) await driver.putContent(f, randomBytes(32));
          await driver.putContent(`${dir}/keep`, Buffer.from('k'));
          await driver.delete(tree);
          for (const f of files) await expectError(() => driver.getContent(f), PathNotFoundError, f, `${f} after deleting the tree`);
          await expectError(() => driver.stat(tree), PathNotFoundError, tree, 'stat of a deleted tree');
          await expectError(() => driver.list(tree), PathNotFoundError, tree, 'list of a deleted tree');
          await expectError(() => driver.stat(`${tree}/b/d`), PathNotFoundError, `${tree}/b/d`, 'stat inside a deleted tree');
          assert.deepEqual(await driver.list(dir), [`${dir}/keep`]);
        });
      });

      it('only deletes real subpaths: deleting /a/b spares /a/bc, /a/b-x and /a/b.c', async () => {
        await inDir(async (dir) => {
          const b = `${dir}/a/b`;
          // Files and directories whose names start with "b": none is below /a/b.
          const files = [`${dir}/a/bc`, `${dir}/a/bcd/x`, `${dir}/a/b-x/y`, `${dir}/a/b.c`, `${dir}/a/bb`, `${dir}/a/ba/b/x`];
          await driver.putContent(`${b}/x`, randomBytes(8));
          await driver.putContent(`${b}/y/z`, randomBytes(8));
          for (const f of files) await driver.putContent(f, Buffer.from(f));
          await driver.delete(b);
          await expectError(() => driver.stat(b), PathNotFoundError, b, 'stat of the deleted directory');
          for (const f of files) assert.deepEqual(await driver.getContent(f), Buffer.from(f), `${f} survives`);

          // Distribution's shape: deleting a file /d/f spares /d/fsuffix; deleting /d/d spares /d/dsuffix/f.
          const f = `${dir}/d/f`;
          await driver.putContent(f, Buffer.from('1'));
          await driver.putContent(`${f}suffix`, Buffer.from('2'));
          await driver.putContent(`${dir}/d/d/f`, Buffer.from('3'));
          await driver.putContent(`${dir}/d/dsuffix/f`, Buffer.from('4'));
          await driver.delete(f);
          assert.deepEqual(await driver.getContent(`${f}suffix`), Buffer.from('2'));
          await driver.delete(`${dir}/d/d`);
          await expectError(() => driver.getContent(`${dir}/d/d/f`), PathNotFoundError, `${dir}/d/d/f`, 'deleted');
          assert.deepEqual(await driver.getContent(`${dir}/d/dsuffix/f`), Buffer.from('4'));
        });
      });

      it('a missing path, or one below a file, is PathNotFoundError', async () => {
        await inDir(async (dir) => {
          const missing = `${dir}/missing`;
          await expectError(() => driver.delete(missing), PathNotFoundError, missing, 'delete missing');
          await driver.putContent(`${dir}/f`, Buffer.from('x'));
          const below = `${dir}/f/x`;
          await expectError(() => driver.delete(below), PathNotFoundError, below, 'delete below a file');
          const prefix = `${dir}/f-not`;
          await expectError(() => driver.delete(prefix), PathNotFoundError, prefix, 'delete of a name that is not there');
          assert.deepEqual(await driver.getContent(`${dir}/f`), Buffer.from('x'));
        });
      });
    });

    // ---------------------------------------------------------------- walk

    describe('walk', () => {
      it('visits every file and directory, depth first, in lexical order', async () => {
        await inDir(async (dir) => {
          const files: Record<string, number> = {
            [`${dir}/a/x`]: 1,
            [`${dir}/a/y/z`]: 2,
            [`${dir}/a/y/zz/deep`]: 3,
            [`${dir}/b`]: 4,
            [`${dir}/c/d/e/f`]: 5,
            [`${dir}/c/d/g`]: 6,
          };
          for (const [p, n] of Object.entries(files)) await driver.putContent(p, randomBytes(n));
          const seen: FileInfo[] = [];
          await driver.walk(dir, (info) => {
            seen.push(info);
          });
          assert.deepEqual(
            seen.map((i) => i.path),
            [
              `${dir}/a`,
              `${dir}/a/x`,
              `${dir}/a/y`,
              `${dir}/a/y/z`,
              `${dir}/a/y/zz`,
              `${dir}/a/y/zz/deep`,
              `${dir}/b`,
              `${dir}/c`,
              `${dir}/c/d`,
              `${dir}/c/d/e`,
              `${dir}/c/d/e/f`,
              `${dir}/c/d/g`,
            ],
          );
          for (const info of seen) {
            const size = files[info.path];
            if (size === undefined) {
              assert.equal(info.isDir, true, `${info.path} is a directory`);
              assert.equal(info.size, 0);
            } else {
              assert.equal(info.isDir, false, `${info.path} is a file`);
              assert.equal(info.size, size);
            }
            assert.ok(info.modTime instanceof Date);
          }
          // From the root, too.
          const fromRoot: string[] = [];
          await driver.walk('/', (info) => {
            fromRoot.push(info.path);
          });
          assert.deepEqual(fromRoot, [dir, ...seen.map((i) => i.path)]);
        });
      });

      it("'skip' keeps it out of a directory; async visitors are awaited; visitor errors propagate", async () => {
        await inDir(async (dir) => {
          for (const p of [`${dir}/a/1`, `${dir}/a/2/3`, `${dir}/b/4`, `${dir}/c`]) await driver.putContent(p, Buffer.from('x'));
          const seen: string[] = [];
          await driver.walk(dir, async (info) => {
            await new Promise((r) => setImmediate(r));
            seen.push(info.path);
            return info.path === `${dir}/a` || info.path === `${dir}/c` ? 'skip' : undefined;
          });
          assert.deepEqual(seen, [`${dir}/a`, `${dir}/b`, `${dir}/b/4`, `${dir}/c`]);

          const boom = new Error('visitor failed');
          await assert.rejects(
            () =>
              driver.walk(dir, (info) => {
                if (info.path === `${dir}/b`) throw boom;
              }),
            (err) => err === boom,
          );
        });
      });

      it('a missing path is PathNotFoundError', async () => {
        await inDir(async (dir) => {
          const missing = `${dir}/missing`;
          await expectError(() => driver.walk(missing, () => undefined), PathNotFoundError, missing, 'walk missing');
        });
      });
    });

    // ---------------------------------------------------------------- concurrency

    describe('concurrency', () => {
      it('concurrent writers to different paths do not interfere', async () => {
        await inDir(async (dir) => {
          const writers = 6;
          const chunks = 8;
          const chunkSize = 128 * 1024 + 7;
          const contents = Array.from({ length: writers }, () => Array.from({ length: chunks }, () => randomBytes(chunkSize)));
          const ws = await Promise.all(contents.map((_, i) => driver.writer(`${dir}/w${i}/data`, false)));
          for (let c = 0; c < chunks; c++) {
            await Promise.all(ws.map((w, i) => w.write(contents[i][c])));
          }
          await Promise.all(ws.map((w) => w.commit()));
          await Promise.all(ws.map((w) => w.close()));
          await Promise.all(
            contents.map(async (parts, i) => {
              assert.ok((await driver.getContent(`${dir}/w${i}/data`)).equals(Buffer.concat(parts)), `writer ${i}`);
            }),
          );
        });
      });

      it('concurrent putContent to the same path leaves one whole content, and readers never see a mix', async () => {
        await inDir(async (dir) => {
          const p = `${dir}/link`;
          // Content i is byte i repeated, with its own length: a mix or a torn write is detectable.
          const contents = Array.from({ length: 12 }, (_, i) => Buffer.alloc(256 * 1024 + i * 4099, i + 1));
          const initial = Buffer.alloc(300 * 1024, 0xee);
          const whole = (b: Buffer): boolean => [initial, ...contents].some((c) => c.equals(b));
          await driver.putContent(p, initial);
          let writing = true;
          const readers = Array.from({ length: 3 }, async (_, r) => {
            let reads = 0;
            while (writing || reads === 0) {
              const got = r === 0 ? await readRange(p) : await driver.getContent(p);
              assert.ok(whole(got), `reader ${r} saw ${got.length} bytes that are no single content`);
              reads++;
            }
          });
          await Promise.all(contents.map((c) => driver.putContent(p, c))).finally(() => {
            writing = false;
          });
          await Promise.all(readers);
          const final = await driver.getContent(p);
          assert.ok(contents.some((c) => c.equals(final)), 'the final content is one of those written, whole');
          assert.equal((await driver.stat(p)).size, final.length);
          assert.deepEqual(await driver.list(dir), [p], 'no temporary files are visible');
        });
      });

      it('concurrent moves onto the same destination leave one whole source', async () => {
        await inDir(async (dir) => {
          const dest = `${dir}/blob/data`;
          const contents = Array.from({ length: 6 }, (_, i) => Buffer.alloc(64 * 1024 + i, i + 1));
          await Promise.all(contents.map((c, i) => driver.putContent(`${dir}/up${i}/data`, c)));
          await Promise.all(contents.map((_, i) => driver.move(`${dir}/up${i}/data`, dest)));
          const final = await driver.getContent(dest);
          assert.ok(contents.some((c) => c.equals(final)));
          for (let i = 0; i < contents.length; i++) {
            const src = `${dir}/up${i}/data`;
            await expectError(() => driver.stat(src), PathNotFoundError, src, 'moved source');
          }
        });
      });
    });

    // ---------------------------------------------------------------- redirectURL

    describe('redirectURL', () => {
      it('is null, or a URL serving the content', async () => {
        await inDir(async (dir) => {
          const p = `${dir}/f`;
          const content = randomBytes(32);
          await driver.putContent(p, content);
          for (const method of ['GET', 'HEAD']) {
            const url = await driver.redirectURL(method, p);
            if (url === null) continue;
            assert.equal(typeof url, 'string');
            const res = await fetch(new URL(url), { method });
            assert.equal(res.status, 200, `${method} ${url}`);
            if (method === 'GET') assert.deepEqual(Buffer.from(await res.arrayBuffer()), content);
            else assert.equal(res.headers.get('content-length'), '32');
          }
        });
      });
    });
  });
}
