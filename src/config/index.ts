// Public API of the configuration module.
export { ConfigError } from './errors.js';
export { parseDuration, formatDuration } from './duration.js';
export { DEFAULT_CONFIG_YAML } from './defaults.js';
export { loadConfig, parseConfig, type LoadedConfig } from './load.js';
export { unsupportedFeatures } from './unsupported.js';
export { configSchema, type Config } from './schema.js';
export { STORAGE_DRIVERS, type StorageDriverConfig, type StorageDriverName } from './schema-storage.js';
