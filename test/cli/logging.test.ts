import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { makeLogger } from '../../src/cli/logging.js';

async function logOnce(formatter: string, level = 'info'): Promise<string> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const log = makeLogger({ level, formatter, fields: { service: 'registry' } }, out);
  log.info({ repository: 'team/app', size: 12 }, 'pushed "x"');
  log.debug('hidden at info');
  await new Promise((r) => setTimeout(r, 20));
  return Buffer.concat(chunks).toString();
}

describe('log.formatter', () => {
  it('text: logrus key=value lines, quoted where needed, fields sorted', async () => {
    const line = (await logOnce('text')).trim();
    assert.match(line, /^time=\d{4}-\d\d-\d\dT[\d:.]+Z level=info msg="pushed \\"x\\"" repository=team\/app service=registry size=12$/);
  });

  it('json: level as a word, msg and time', async () => {
    const entry = JSON.parse((await logOnce('json')).trim());
    assert.equal(entry.level, 'info');
    assert.equal(entry.msg, 'pushed "x"');
    assert.equal(entry.service, 'registry');
    assert.ok(!Number.isNaN(Date.parse(entry.time)));
  });

  it('logstash: @timestamp, @version and message', async () => {
    const entry = JSON.parse((await logOnce('logstash')).trim());
    assert.equal(entry['@version'], '1');
    assert.equal(entry.message, 'pushed "x"');
    assert.equal(entry.level, 'info');
    assert.ok(!Number.isNaN(Date.parse(entry['@timestamp'])));
  });

  it('log.level filters: debug lines appear only at debug', async () => {
    assert.doesNotMatch(await logOnce('text', 'info'), /hidden/);
    assert.match(await logOnce('text', 'debug'), /hidden at info/);
  });
});
