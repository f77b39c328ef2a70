// The small pieces of an event that come from the request and the configuration.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import { actorRecord, manifestReferences, queueInstanceId, requestRecord, sourceAddress } from '../../src/notifications/index.js';

function req(headers: Record<string, string>, remoteAddress = '127.0.0.1', remotePort = 40000, method = 'GET'): IncomingMessage {
  return { headers, method, socket: { remoteAddress, remotePort } } as unknown as IncomingMessage;
}

describe('event records', () => {
  test('request.addr: X-Forwarded-For first entry, else X-Real-Ip (when IPs), else the peer with its port', () => {
    assert.equal(requestRecord(req({ 'x-forwarded-for': ' 203.0.113.9 , 10.0.0.1' })).addr, '203.0.113.9');
    assert.equal(requestRecord(req({ 'x-forwarded-for': 'not-an-ip', 'x-real-ip': '2001:db8::1' })).addr, '2001:db8::1');
    assert.equal(requestRecord(req({ 'x-real-ip': 'bogus' })).addr, '127.0.0.1:40000');
    assert.equal(requestRecord(req({}, '::ffff:192.0.2.7', 5)).addr, '192.0.2.7:5');
    assert.equal(requestRecord(req({}, '::1', 6)).addr, '[::1]:6');
  });

  test('request: host (or HTTP/2 :authority), method and user agent (always present, maybe empty)', () => {
    const r = requestRecord(req({ host: 'r.example.com:5000', 'user-agent': 'ua/1' }, '127.0.0.1', 1, 'HEAD'), 'the-id');
    assert.deepEqual(r, { id: 'the-id', addr: '127.0.0.1:1', host: 'r.example.com:5000', method: 'HEAD', useragent: 'ua/1' });
    assert.equal(requestRecord(req({ ':authority': 'h2.example.com' })).host, 'h2.example.com');
    assert.equal(requestRecord(req({})).useragent, '');
  });

  test('actor: the authenticated user, else the Basic user name, else nobody', () => {
    const basic = (s: string) => ({ authorization: `Basic ${Buffer.from(s).toString('base64')}` });
    assert.deepEqual(actorRecord(req(basic('alice:pw')), 'bob'), { name: 'bob' });
    assert.deepEqual(actorRecord(req(basic('alice:pw:with:colons'))), { name: 'alice' });
    assert.deepEqual(actorRecord(req(basic(':pw'))), {});
    assert.deepEqual(actorRecord(req({ authorization: 'Bearer abc' })), {});
    assert.deepEqual(actorRecord(req({})), {});
  });

  test('source.addr and the queue directory: the host name with http.addr\'s port', () => {
    assert.equal(sourceAddress('node1', ':5000'), 'node1:5000');
    assert.equal(sourceAddress('node1', '0.0.0.0:5001'), 'node1:5001');
    assert.equal(sourceAddress('node1', '[::]:5002'), 'node1:5002');
    assert.equal(sourceAddress('node1', '/run/registry.sock'), '/run/registry.sock');
    assert.equal(queueInstanceId('node1', ':5000'), 'node1-5000');
    assert.equal(queueInstanceId('pod name/ü', '[::]:443'), 'pod_name__-443');
    assert.equal(queueInstanceId('..', 'x'), '..-0');
  });

  test('references: config then layers, or an index\'s manifests, keeping descriptor fields', () => {
    const config = { mediaType: 'c', digest: 'sha256:1', size: 1 };
    const layer = { mediaType: 'l', digest: 'sha256:2', size: 2, urls: ['https://x/'], annotations: { a: 'b' }, extra: 'dropped' };
    assert.deepEqual(manifestReferences({ config, layers: [layer] }), [config, { mediaType: 'l', digest: 'sha256:2', size: 2, urls: ['https://x/'], annotations: { a: 'b' } }]);
    const child = { mediaType: 'm', digest: 'sha256:3', size: 3, platform: { os: 'linux', architecture: 'arm64' }, artifactType: 't' };
    assert.deepEqual(manifestReferences({ manifests: [child] }), [child]);
  });
});
