// The configuration used when no file is given (`wharf` can print it).
// Only features Wharf implements appear here.

export const DEFAULT_CONFIG_YAML = `version: 0.1
log:
  level: info
  formatter: text
  fields:
    service: registry
storage:
  filesystem:
    # Relative to the directory wharf is started from.
    rootdirectory: ./data
  delete:
    enabled: false
  cache:
    blobdescriptor: inmemory
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
`;

export const DEFAULT_SOURCE = 'embedded default';
