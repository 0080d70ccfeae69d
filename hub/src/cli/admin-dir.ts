// Where the CLI finds the administrator's copy of the hub's identity files (ca.crt,
// admin.crt, admin.key): --admin-dir, $FLOTILLA_ADMIN_DIR, else a per-user default, so
// `flotilla cluster` and the HTTPS commands work without extra flags once it is filled.
import { join } from 'node:path';
import type { CliIo } from './io.js';

/** The per-user default: $XDG_CONFIG_HOME/flotilla/admin, else ~/.config/flotilla/admin. */
export function defaultAdminDir(env: NodeJS.ProcessEnv): string | undefined {
  const base = env.XDG_CONFIG_HOME || (env.HOME ? join(env.HOME, '.config') : undefined);
  return base ? join(base, 'flotilla', 'admin') : undefined;
}

/** The admin directory of this invocation: the flag, then $FLOTILLA_ADMIN_DIR, then the default. */
export function adminDirOf(flag: string | undefined, io: CliIo): string | undefined {
  return flag ?? io.env.FLOTILLA_ADMIN_DIR ?? defaultAdminDir(io.env);
}
