/** `wharf serve [CONFIG]`: load the configuration, refuse what is not implemented, start, stop on signals. */
import { loadConfig, unsupportedFeatures, type Config } from '../config/index.js';
import { redisConnection } from '../config/redis.js';
import { makeLogger } from './logging.js';
import { startRegistry, type RegistrySettings } from './start.js';
import { proxySettingsFrom } from '../proxy/settings.js';
import { tracingSettingsFromEnv } from '../tracing/env.js';

export function settingsFromConfig(config: Config): RegistrySettings {
  const { storage, http, log } = config;
  const urls = config.validation.enabled ? config.validation.manifests.urls : { allow: [], deny: [] };
  return {
    storage: { name: storage.driver.name, options: storage.driver.options as Record<string, unknown> },
    deleteEnabled: storage.delete.enabled,
    descriptorCache: storage.cache.blobdescriptor !== undefined,
    descriptorCacheEntries: storage.cache.blobdescriptorsize,
    redisCache: storage.cache.blobdescriptor === 'redis' ? (redisConnection(config.redis) ?? undefined) : undefined,
    http: {
      addr: http.addr,
      net: http.net,
      drainMs: http.draintimeout,
      host: http.host || undefined,
      prefix: http.prefix,
      relativeurls: http.relativeurls,
      headers: http.headers as Record<string, string[]>,
      tls: { ...http.tls, clientcas: [...http.tls.clientcas], ciphersuites: [...http.tls.ciphersuites], letsencrypt: { ...http.tls.letsencrypt, hosts: [...http.tls.letsencrypt.hosts] } },
      http2Disabled: http.http2.disabled,
      h2c: http.h2c.enabled,
    },
    log: {
      level: log.level,
      formatter: log.formatter,
      accessLog: !log.accesslog.disabled,
      fields: { ...log.fields },
      hooks: log.hooks
        .map((h, index) => ({ index, hook: h }))
        .filter(({ hook }) => !hook.disabled)
        .map(({ index, hook }) => ({
          index,
          type: hook.type,
          mail: { levels: [...hook.levels], smtp: { ...hook.options.smtp }, from: hook.options.from, to: [...hook.options.to] },
        })),
    },
    catalogMaxEntries: config.catalog.maxentries,
    uploadPurging: { ...storage.maintenance.uploadpurging },
    readOnly: storage.maintenance.readonly.enabled,
    // With validation on and no allow list, Distribution refuses every layer URL: so does an empty list here.
    urlsAllow: config.validation.enabled ? [...urls.allow] : ['.*'],
    urlsDeny: [...urls.deny],
    redirectDisabled: storage.redirect.disable,
    tagConcurrency: storage.tag.concurrencylimit,
    gc: { ...storage.gc },
    indexChildren: indexChildren(config),
    auth: authSettings(config),
    notifications: notificationSettings(config),
    debug: { addr: http.debug.addr, prometheus: { ...http.debug.prometheus } },
    health: config.health,
    // Unlike Distribution, which applies an entry whatever its `disabled`, a disabled entry is skipped.
    storageMiddleware: config.middleware.storage
      .map((m, index) => ({ index, name: m.name, options: { ...m.options }, disabled: m.disabled }))
      .filter((m) => !m.disabled)
      .map(({ disabled: _, ...m }) => m),
    proxy: proxySettingsFrom(config.proxy),
  };
}

function notificationSettings(config: Config): RegistrySettings['notifications'] {
  const { events, endpoints } = config.notifications;
  if (endpoints.length === 0) return undefined;
  return {
    includeReferences: events.includereferences,
    endpoints: endpoints.map((e) => ({
      name: e.name,
      url: e.url,
      disabled: e.disabled,
      headers: e.headers as Record<string, string[]>,
      timeout: e.timeout,
      threshold: e.threshold,
      backoff: e.backoff,
      ignoredMediaTypes: [...e.ignoredmediatypes, ...e.ignore.mediatypes],
      ignoredActions: [...e.ignore.actions],
    })),
  };
}

function authSettings(config: Config): RegistrySettings['auth'] {
  const { htpasswd, silly, token } = config.auth;
  if (htpasswd) return { htpasswd: { realm: htpasswd.realm, path: htpasswd.path } };
  if (silly) return { silly: { realm: silly.realm, service: silly.service } };
  if (token) return { token: { ...token, signingalgorithms: token.signingalgorithms ? [...token.signingalgorithms] : undefined } };
  return undefined;
}

/** Basic auth sends passwords in clear without TLS (as Distribution's check: a certificate or Let's Encrypt). */
function basicAuthWithoutTLS(config: Config): boolean {
  const tls = config.http.tls;
  return config.auth.htpasswd !== undefined && tls.certificate === '' && tls.letsencrypt.cachefile === '';
}

/** `validation.manifests.indexes`, applied when validation is on (as Distribution 3); off, every child must exist, as in 2.8. */
function indexChildren(config: Config): RegistrySettings['indexChildren'] {
  if (!config.validation.enabled) return 'all';
  const { platforms, platformlist } = config.validation.manifests.indexes;
  if (platforms === 'list') return { platforms: platformlist.map((p) => ({ architecture: p.architecture, os: p.os })) };
  return platforms === 'none' ? 'none' : 'all';
}

export async function serve(args: string[]): Promise<number> {
  const loaded = loadConfig({ path: args[0], env: process.env });
  const settings = settingsFromConfig(loaded.config);
  settings.tracing = tracingSettingsFromEnv(process.env); // OpenTelemetry is configured by OTEL_* only
  const log = makeLogger(settings.log);
  for (const warning of loaded.warnings) log.warn(warning);
  const unsupported = unsupportedFeatures(loaded.config);
  if (unsupported.length > 0) {
    throw new Error(`configuration ${loaded.source} uses what this version does not support yet:\n  ${unsupported.join('\n  ')}`);
  }
  if (!loaded.config.http.secret) {
    // Distribution signs upload state with it; Wharf keeps upload state in storage and does not need it.
    log.warn(
      'No HTTP secret provided (http.secret): a random one was generated. Wharf keeps upload state in storage, so uploads still move ' +
        'between Wharf instances; if Distribution registries share this storage behind a load balancer, give every instance the same http.secret',
    );
  }
  if (loaded.config.validation.enabled && loaded.config.validation.manifests.indexes.platforms !== 'all') {
    log.warn('validation.manifests.indexes: image indexes may now be pushed before all their images (experimental, as in Distribution); other tools may expect complete indexes');
  }
  if (basicAuthWithoutTLS(loaded.config)) {
    log.warn('auth.htpasswd without TLS (http.tls): passwords cross the network in clear; serve over TLS or behind a TLS proxy');
  }
  const started = await startRegistry(settings, log);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await started.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  // Logged once the signal handlers are in place: a supervisor that stops us on seeing it gets a clean stop.
  log.info({ config: loaded.source, storage: settings.storage.name, ...storageWhere(settings) }, `listening on ${settings.http.addr}`);
  return new Promise<number>(() => undefined);
}

function storageWhere(settings: RegistrySettings): Record<string, unknown> {
  const root = settings.storage.options.rootdirectory;
  return root === undefined ? {} : { rootdirectory: root };
}
