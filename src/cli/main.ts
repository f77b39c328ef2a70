/** The `wharf` command line: serve, help, --version. */
import { readFileSync } from 'node:fs';

const USAGE = `Usage: wharf <command> [options]

Commands:
  serve [CONFIG]     serve the registry (CONFIG also from REGISTRY_CONFIGURATION_PATH;
                     none: filesystem storage under ./data, listening on :5000)
  htpasswd FILE USER add USER to an htpasswd file or change its password (bcrypt; password
                     from standard input, or asked for without echo on a terminal)
  garbage-collect CONFIG [-d] [-m] [-q]
                     delete blobs no manifest references (registry stopped or read-only)
  delete-repository CONFIG NAME...
                     delete whole repositories (tags, revisions, links); blobs stay for GC
  help               show this help
  --version, -v      print the version

Wharf reads Distribution's configuration format (version: 0.1) and its
REGISTRY_<SECTION>_<KEY> environment overrides.`;

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return command === undefined ? 1 : 0;
    case '--version':
    case '-v':
    case 'version':
      console.log(`wharf ${version()}`);
      return 0;
    case 'serve':
      // Commands load their modules when run: `wharf --version` need not load a server and SDKs.
      return (await import('./serve.js')).serve(rest);
    case 'delete-repository':
      return (await import('./delete-repository.js')).deleteRepositoryCommand(rest);
    case 'garbage-collect':
      return (await import('./garbage-collect.js')).garbageCollect(rest);
    case 'htpasswd':
      return (await import('./htpasswd.js')).htpasswdCommand(rest);
    default:
      console.error(`wharf: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}
