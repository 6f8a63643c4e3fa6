import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LocalGateway {
  /** Where pid, logs, temp files and the static root go. */
  dir: string;
  port: number;
  upstreams: { host: string; port: number }[];
  /** The master runs as root: workers then run as root too (no `nginx` user on a dev machine). */
  isRoot: boolean;
}

/** nginx/nginx.conf of the repository, the very file the gateway image ships. */
export const NGINX_CONF_PATH = join(__dirname, '..', '..', '..', 'nginx', 'nginx.conf');

/**
 * The production gateway config with only addresses, ports and paths changed (the lines
 * marked `@test:`), so a test exercises the real directives: SSE without buffering, headers,
 * the upstream block, body limits.
 */
export function localNginxConfig(template: string, gw: LocalGateway): string {
  let upstreamsWritten = false;
  const seen = new Set<string>();
  const lines = template.split('\n').flatMap((line): string[] => {
    const marker = /#\s*@test:\s*(\w+)/.exec(line)?.[1];
    if (!marker) return [line];
    seen.add(marker);
    const indent = /^\s*/.exec(line)?.[0] ?? '';
    switch (marker) {
      case 'user': return gw.isRoot ? [`${indent}user root;`] : [];
      case 'pid': return [`${indent}pid ${gw.dir}/nginx.pid;`];
      case 'error_log': return [`${indent}error_log ${gw.dir}/error.log warn;`];
      case 'access_log': return [
        `${indent}access_log ${gw.dir}/access.log;`,
        ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${indent}${t}_temp_path ${gw.dir}/${t}_temp;`),
      ];
      case 'upstream': {
        if (upstreamsWritten) return [];
        upstreamsWritten = true;
        const options = /server\s+\S+\s+([^;]*);/.exec(line)?.[1] ?? '';
        return gw.upstreams.map((u) => `${indent}server ${u.host}:${u.port} ${options};`);
      }
      case 'listen': return [`${indent}listen 127.0.0.1:${gw.port} default_server;`];
      case 'root': return [`${indent}root ${gw.dir}/html;`];
      default: throw new Error(`nginx.conf: unknown @test marker "${marker}"`);
    }
  });
  for (const marker of ['pid', 'error_log', 'access_log', 'upstream', 'listen', 'root']) {
    if (!seen.has(marker)) throw new Error(`nginx.conf lost its "@test: ${marker}" line`);
  }
  return lines.join('\n');
}

export function readNginxTemplate(): string {
  return readFileSync(NGINX_CONF_PATH, 'utf8');
}
