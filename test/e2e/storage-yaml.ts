/**
 * A storage driver's parameters as the lines under `storage:` in a registry's YAML config (what
 * StartOptions.storage takes), for Wharf and Distribution alike. Strings are quoted (user names
 * such as RGW's `user:swift` hold ':'), text over several lines (a PEM key) is a block scalar, and
 * a map (gcs's inline `credentials`) nests. No imports: the benchmarks use it too.
 */
export function storageYaml(driver: string, params: Record<string, unknown>): string[] {
  return [`  ${driver}:`, ...mapLines(params, '    ')];
}

function mapLines(params: Record<string, unknown>, indent: string): string[] {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(params)) {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      lines.push(`${indent}${key}:`, ...mapLines(value as Record<string, unknown>, `${indent}  `));
    } else if (typeof value === 'string' && value.includes('\n')) {
      lines.push(`${indent}${key}: |`, ...value.trimEnd().split('\n').map((l) => `${indent}  ${l}`));
    } else {
      lines.push(`${indent}${key}: ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`);
    }
  }
  return lines;
}
