// The agent's version, from its package.json (announced in Hello).
import { readFileSync } from 'node:fs';

/** Version of @flotilla/agent, "0.0.0" if package.json cannot be read. */
export function agentVersion(): string {
  try {
    const pkg = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
