import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LocalGateway {
  /** Where pid, logs, temp files and the static root go. */
  dir: string;
  port: number;
  upstreams: { host: string; port: number }[];
  /** The master runs as root: workers then run as root too (no `nginx` user on a dev machine). */
  isRoot: boolean;
  /** A tls.conf (localTlsConfig) to include, as the gateway includes /etc/nginx/tls/*.conf; none: plain HTTP only. */
  tlsConf?: string;
  /** Shorter timeouts (nginx time syntax, e.g. `1s`, `500ms`) so a test of a stuck backend is quick; none: as shipped. */
  timeouts?: GatewayTimeouts;
}

export interface GatewayTimeouts {
  /** proxy_read_timeout of the non-streaming API routes. */
  apiRead?: string;
  /** proxy_next_upstream_timeout: no other instance is tried once this has passed. */
  nextUpstream?: string;
}

/** nginx/tls.conf.example of the repository: what an operator copies to enable TLS. */
export const TLS_CONF_EXAMPLE_PATH = join(__dirname, '..', '..', '..', 'nginx', 'tls.conf.example');

/**
 * nginx/tls.conf.example with its marked lines rewritten: a loopback port, the test's certificate.
 * `http2 on` (nginx ≥ 1.25.1, the gateway image) becomes `http2` on the listen line, which older
 * nginx (Debian 12's 1.22) takes too.
 */
export function localTlsConfig(template: string, tls: { port: number; certificate: string; key: string }): string {
  const seen = new Set<string>();
  const lines = template.split('\n').flatMap((line): string[] => {
    const marker = /#\s*@test:\s*(\w+)/.exec(line)?.[1];
    if (!marker) return [line];
    seen.add(marker);
    switch (marker) {
      case 'tls_listen': return [`listen 127.0.0.1:${tls.port} ssl http2;`];
      case 'tls_http2': return [];
      case 'tls_certificate': return [`ssl_certificate ${tls.certificate};`];
      case 'tls_certificate_key': return [`ssl_certificate_key ${tls.key};`];
      default: throw new Error(`tls.conf.example: unknown @test marker "${marker}"`);
    }
  });
  for (const marker of ['tls_listen', 'tls_http2', 'tls_certificate', 'tls_certificate_key']) {
    if (!seen.has(marker)) throw new Error(`tls.conf.example lost its "@test: ${marker}" line`);
  }
  return lines.join('\n');
}

/** nginx/nginx.conf of the repository, the very file the gateway image ships. */
export const NGINX_CONF_PATH = join(__dirname, '..', '..', '..', 'nginx', 'nginx.conf');

/**
 * The production gateway config with only addresses, ports and paths changed (the lines
 * marked `@test:`), so a test exercises the real directives: SSE without buffering, headers,
 * the upstream block, body limits.
 */
export function localNginxConfig(template: string, gw: LocalGateway): string {
  const written = new Set<string>();
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
        `${indent}access_log ${gw.dir}/access.log${/access_log\s+\S+(\s+\w+)?;/.exec(line)?.[1] ?? ''};`,
        ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${indent}${t}_temp_path ${gw.dir}/${t}_temp;`),
      ];
      case 'upstream':
      case 'upstream_backup': {
        // Each marked block once, with the block's options, for every local instance.
        if (written.has(marker)) return [];
        written.add(marker);
        const options = /server\s+\S+\s+([^;]*);/.exec(line)?.[1] ?? '';
        return gw.upstreams.map((u) => `${indent}server ${u.host}:${u.port} ${options};`);
      }
      case 'listen': return [`${indent}listen 127.0.0.1:${gw.port} default_server;`];
      case 'root': return [`${indent}root ${gw.dir}/html;`];
      case 'tls': return gw.tlsConf ? [`${indent}include ${gw.tlsConf};`] : [];
      case 'api_read_timeout': return [gw.timeouts?.apiRead ? `${indent}proxy_read_timeout ${gw.timeouts.apiRead};` : line];
      case 'next_upstream_timeout': return [gw.timeouts?.nextUpstream ? `${indent}proxy_next_upstream_timeout ${gw.timeouts.nextUpstream};` : line];
      default: throw new Error(`nginx.conf: unknown @test marker "${marker}"`);
    }
  });
  for (const marker of ['pid', 'error_log', 'access_log', 'upstream', 'upstream_backup', 'listen', 'root', 'tls', 'api_read_timeout', 'next_upstream_timeout']) {
    if (!seen.has(marker)) throw new Error(`nginx.conf lost its "@test: ${marker}" line`);
  }
  return lines.join('\n');
}

export function readNginxTemplate(): string {
  return readFileSync(NGINX_CONF_PATH, 'utf8');
}
