// The `proxy` section: Distribution's keys as they are, Wharf's `upstreams` list, errors that name
// the key (and its REGISTRY_* variable), environment overrides, and which upstream serves a name.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { unsupportedFeatures } from '../../src/config/index.js';
import { DEFAULT_CACHE_WRITE_TIMEOUT, proxySettingsFrom, upstreamFor, type UpstreamSettings } from '../../src/proxy/settings.js';
import { BASE, errorOf, parse } from '../config/helpers.js';

const settings = (yaml: string, env: Record<string, string> = {}) => proxySettingsFrom(parse(`${BASE}${yaml}`, env).config.proxy);

describe('proxy configuration', () => {
  test('Distribution\'s form: one upstream for every repository, default ttl 168h, cachewritetimeout 5m', () => {
    const s = settings('proxy:\n  remoteurl: https://registry-1.docker.io/\n  username: u\n  password: p\n');
    assert.deepEqual(s, {
      upstreams: [
        { prefix: '', remoteurl: 'https://registry-1.docker.io', username: 'u', password: 'p', exec: undefined, ttl: 168 * 3_600_000, cacheWriteTimeout: DEFAULT_CACHE_WRITE_TIMEOUT, key: 'proxy' },
      ],
    });
    assert.equal(settings('proxy:\n  remoteurl: http://r:5000\n  ttl: 0\n')!.upstreams[0]!.ttl, 0, 'ttl 0: never expire (Distribution 3)');
    assert.equal(settings('proxy:\n  remoteurl: http://r:5000\n  cachewritetimeout: 30s\n')!.upstreams[0]!.cacheWriteTimeout, 30_000);
    assert.deepEqual(settings('proxy:\n  remoteurl: http://r\n  exec:\n    command: /usr/bin/docker-credential-x\n    lifetime: 1h\n')!.upstreams[0]!.exec, {
      command: '/usr/bin/docker-credential-x',
      lifetime: 3_600_000,
    });
    assert.equal(settings(''), undefined, 'no proxy section: no cache');
    assert.equal(settings('proxy:\n  username: u\n'), undefined, 'no remoteurl: no cache, as in Distribution');
    assert.deepEqual(unsupportedFeatures(parse(`${BASE}proxy:\n  remoteurl: https://registry-1.docker.io\n  ttl: 1h\n`).config), []);
  });

  test('upstreams by prefix, each with its own keys, next to proxy.remoteurl', () => {
    const s = settings(
      'proxy:\n  remoteurl: http://fallback:5000\n  upstreams:\n' +
        '    - prefix: dockerhub\n      remoteurl: https://registry-1.docker.io\n      username: me\n      password: secret\n      ttl: 24h\n' +
        '    - prefix: mirrors/ghcr\n      remoteurl: https://ghcr.io\n',
    )!;
    assert.deepEqual(
      s.upstreams.map((u) => [u.prefix, u.remoteurl, u.username, u.ttl, u.key]),
      [
        ['dockerhub', 'https://registry-1.docker.io', 'me', 24 * 3_600_000, 'proxy.upstreams[0]'],
        ['mirrors/ghcr', 'https://ghcr.io', '', 168 * 3_600_000, 'proxy.upstreams[1]'],
        ['', 'http://fallback:5000', '', 168 * 3_600_000, 'proxy'],
      ],
    );
    assert.deepEqual(unsupportedFeatures(parse(`${BASE}proxy:\n  upstreams:\n    - {prefix: a, remoteurl: 'http://a'}\n`).config), []);
  });

  test('environment variables set upstream keys by index', () => {
    const s = settings('proxy:\n  upstreams:\n    - prefix: hub\n      remoteurl: https://registry-1.docker.io\n', {
      REGISTRY_PROXY_UPSTREAMS_0_PASSWORD: 'from-env',
      REGISTRY_PROXY_UPSTREAMS_1_PREFIX: 'quay',
      REGISTRY_PROXY_UPSTREAMS_1_REMOTEURL: 'https://quay.io',
    })!;
    assert.deepEqual(s.upstreams.map((u) => [u.prefix, u.remoteurl, u.password]), [
      ['hub', 'https://registry-1.docker.io', 'from-env'],
      ['quay', 'https://quay.io', ''],
    ]);
  });

  test('errors name the key and its variable', () => {
    const err = (yaml: string) => errorOf(() => parse(`${BASE}${yaml}`));
    assert.match(err('proxy:\n  remoteurl: registry-1.docker.io\n'), /proxy\.remoteurl \(REGISTRY_PROXY_REMOTEURL\): expected an absolute http:\/\/ or https:\/\/ URL/);
    assert.match(err('proxy:\n  remoteurl: ftp://r\n'), /proxy\.remoteurl .*expected an absolute http/);
    assert.match(err('proxy:\n  upstreams:\n    - prefix: hub\n'), /proxy\.upstreams\[0\]\.remoteurl \(REGISTRY_PROXY_UPSTREAMS_0_REMOTEURL\): missing; every upstream needs the URL/);
    assert.match(err('proxy:\n  upstreams:\n    - remoteurl: http://a\n'), /proxy\.upstreams\[0\]\.prefix .*missing/);
    assert.match(err('proxy:\n  upstreams:\n    - {prefix: Docker/Hub, remoteurl: "http://a"}\n'), /proxy\.upstreams\[0\]\.prefix .*expected a repository name prefix/);
    assert.match(err('proxy:\n  upstreams:\n    - {prefix: /hub, remoteurl: "http://a"}\n'), /proxy\.upstreams\[0\]\.prefix/);
    assert.match(
      err('proxy:\n  upstreams:\n    - {prefix: hub, remoteurl: "http://a"}\n    - {prefix: hub, remoteurl: "http://b"}\n'),
      /proxy\.upstreams\[1\]\.prefix \(REGISTRY_PROXY_UPSTREAMS_1_PREFIX\): the same prefix as proxy\.upstreams\[0\]\.prefix, got "hub"/,
    );
    assert.match(err('proxy:\n  upstreams:\n    - {prefix: hub, remoteurl: "http://a", ttl: soon}\n'), /proxy\.upstreams\[0\]\.ttl .*expected a duration/);
    assert.match(err('proxy:\n  upstreams: hub\n'), /proxy\.upstreams .*expected a list/);
  });
});

describe('which upstream serves a repository', () => {
  const u = (prefix: string, remoteurl = 'http://r:5000'): UpstreamSettings => ({
    prefix,
    remoteurl,
    username: '',
    password: '',
    ttl: 1,
    cacheWriteTimeout: 1,
    key: prefix ? `proxy.upstreams[${prefix}]` : 'proxy',
  });

  test('the longest prefix wins, stripped for the upstream; other names are local', () => {
    const list = [u('mirrors'), u('mirrors/ghcr'), u('hub', 'https://registry-1.docker.io')];
    assert.deepEqual(upstreamFor(list, 'mirrors/ghcr/org/tool'), { upstream: list[1], remoteName: 'org/tool' });
    assert.deepEqual(upstreamFor(list, 'mirrors/other/x'), { upstream: list[0], remoteName: 'other/x' });
    assert.equal(upstreamFor(list, 'mirrorsx/y'), null, 'a prefix is whole name components');
    assert.equal(upstreamFor(list, 'team/app'), null);
    assert.deepEqual(upstreamFor(list, 'hub'), { upstream: list[2], remoteName: '' }, 'the prefix itself names nothing upstream');
  });

  test('Docker Hub: one-component names are official images under library/', () => {
    const hub = [u('hub', 'https://registry-1.docker.io')];
    assert.equal(upstreamFor(hub, 'hub/alpine')!.remoteName, 'library/alpine');
    assert.equal(upstreamFor(hub, 'hub/bitnami/redis')!.remoteName, 'bitnami/redis');
    assert.equal(upstreamFor([u('', 'https://index.docker.io')], 'alpine')!.remoteName, 'library/alpine');
    assert.equal(upstreamFor([u('', 'https://ghcr.io')], 'alpine')!.remoteName, 'alpine', 'only for Docker Hub');
  });

  test('proxy.remoteurl serves every name no prefix claims', () => {
    const list = [u('hub'), u('')];
    assert.equal(upstreamFor(list, 'hub/x')!.upstream, list[0]);
    assert.deepEqual(upstreamFor(list, 'team/app'), { upstream: list[1], remoteName: 'team/app' });
  });
});
