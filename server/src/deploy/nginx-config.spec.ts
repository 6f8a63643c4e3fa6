import { readFileSync } from 'node:fs';
import { localNginxConfig, localTlsConfig, readNginxTemplate, TLS_CONF_EXAMPLE_PATH } from './nginx-config.js';

describe('nginx/nginx.conf', () => {
  const template = readNginxTemplate();

  it('streams SSE unbuffered, with long reads over HTTP/1.1 and no Connection header; only the stream routes', () => {
    const sse = /location ~ (\S+) \{([^}]*)\}/.exec(template.slice(template.indexOf('location ^~ /api/')));
    expect(sse?.[2]).toMatch(/proxy_buffering off;/);
    expect(sse?.[2]).toMatch(/proxy_read_timeout 1h;/);
    const streams = new RegExp(sse?.[1] ?? '$^');
    for (const path of ['/api/v1/chat', '/api/v1/chat/regenerate', '/api/v1/chat/streams/0b1c']) expect(path).toMatch(streams);
    for (const path of ['/api/v1/chat/streams/0b1c/stop', '/api/v1/chat/feedback', '/api/v1/chat/config']) expect(path).not.toMatch(streams);
    expect(template).toMatch(/proxy_http_version 1\.1;/);
    expect(template).toMatch(/proxy_set_header Connection "";/);
  });

  it('retries another instance only when one cannot be reached, never on its answer, and passes its errors through', () => {
    expect(template).toMatch(/^\s*proxy_next_upstream error timeout;$/m);
    expect(template).not.toMatch(/proxy_next_upstream [^;]*(http_|non_idempotent)/);
    expect(template).toMatch(/^\s*proxy_next_upstream_timeout \d+s;/m);
    expect(template).toMatch(/^\s*proxy_intercept_errors off;$/m);
    expect(template).not.toMatch(/proxy_intercept_errors on/);
  });

  it('answers nginx\'s own errors on the API with the error envelope', () => {
    const api = /location = \/\.gateway-error\/api \{([^}]*)\}/.exec(template)?.[1] ?? '';
    expect(api).toMatch(/default_type application\/json;/);
    expect(api).toContain('"timestamp":"$time_iso8601","request_id":"$request_id"');
    expect(template).toMatch(/proxy_set_header X-Request-Id \$request_id;/);
    expect(template.match(/error_page 400 401 413 500 502 504 \/\.gateway-error\/api;/g)?.length).toBe(2); // /api/ and /api
  });

  it('limits bodies like the upload limit, hides /metrics, passes the client address, sets security headers', () => {
    expect(template).toMatch(/client_max_body_size 11m;/);
    expect(template).toMatch(/location = \/metrics \{ return 404; \}/);
    expect(template).toMatch(/proxy_set_header X-Forwarded-For \$remote_addr;/);
    for (const h of ['Content-Security-Policy', 'X-Content-Type-Options', 'X-Frame-Options', 'Referrer-Policy']) expect(template).toContain(`add_header ${h}`);
    expect(template).toMatch(/gzip on;/);
    expect(template).not.toMatch(/gzip_types[^;]*event-stream/);
  });

  it('becomes a local config by rewriting only the marked lines', () => {
    const local = localNginxConfig(template, { dir: '/tmp/x', port: 8081, upstreams: [{ host: '127.0.0.1', port: 1 }, { host: '127.0.0.1', port: 2 }, { host: '127.0.0.1', port: 3 }], isRoot: false });
    // Timeouts as shipped unless a test shortens them.
    const timeoutLines = (s: string) => s.split('\n').filter((l) => /#\s*@test:\s*(api_read_timeout|next_upstream_timeout)/.test(l));
    expect(timeoutLines(local)).toEqual(timeoutLines(template));
    expect(timeoutLines(local)).toHaveLength(2);
    const quick = localNginxConfig(template, { dir: '/tmp/x', port: 8081, upstreams: [{ host: '127.0.0.1', port: 1 }], isRoot: false, timeouts: { apiRead: '1s', nextUpstream: '500ms' } });
    expect(quick).toMatch(/^\s+proxy_read_timeout 1s;$/m);
    expect(quick).toMatch(/^\s+proxy_next_upstream_timeout 500ms;$/m);
    expect(local).toContain('listen 127.0.0.1:8081 default_server;');
    expect(local).toContain('server 127.0.0.1:3 max_fails=1 fail_timeout=10s;');
    expect(local).toContain('server 127.0.0.1:3 backup max_fails=1 fail_timeout=1s;');
    expect(local.match(/^\s*server 127\.0\.0\.1:\d /gm)).toHaveLength(6);
    expect(local).not.toContain('backend-1');
    expect(local).not.toMatch(/^\s*user /m);
    expect(local).toContain('proxy_temp_path /tmp/x/proxy_temp;');
    const unmarked = (s: string) => s.split('\n').filter((l) => !l.includes('@test:') && !l.includes('/tmp/x') && !/(server|listen) 127\.0\.0\.1/.test(l));
    expect(unmarked(local)).toEqual(unmarked(template));
    // TLS is off unless a tls.conf is given; then that file is what the server block includes.
    expect(local).not.toMatch(/include .*tls/);
    const withTls = localNginxConfig(template, { dir: '/tmp/x', port: 8081, upstreams: [{ host: '127.0.0.1', port: 1 }], isRoot: false, tlsConf: '/tmp/x/tls.conf' });
    expect(withTls).toMatch(/^\s+include \/tmp\/x\/tls\.conf;$/m);
  });

  it('ships TLS as an example to include: HTTP/2, TLS 1.2–1.3, HSTS over HTTPS only, HTTP redirected but the healthcheck', () => {
    expect(template).toMatch(/include \/etc\/nginx\/tls\/\*\.conf;/);
    expect(template).toMatch(/map \$scheme \$gw_hsts \{ https "max-age=63072000; includeSubDomains"; default ""; \}/);
    expect(template).toMatch(/"http:\/healthz" 0;/);
    const example = readFileSync(TLS_CONF_EXAMPLE_PATH, 'utf8');
    expect(example).toMatch(/^listen 443 ssl;/m);
    expect(example).toMatch(/^http2 on;/m);
    expect(example).toMatch(/^ssl_protocols TLSv1\.2 TLSv1\.3;$/m);
    expect(example).toMatch(/^add_header Strict-Transport-Security \$gw_hsts always;$/m);
    expect(example).toMatch(/^if \(\$gw_to_https\) \{ return 301 https:\/\/\$host\$request_uri; \}$/m);
    const local = localTlsConfig(example, { port: 8443, certificate: '/tmp/x/cert.pem', key: '/tmp/x/key.pem' });
    expect(local).toContain('listen 127.0.0.1:8443 ssl http2;');
    expect(local).toContain('ssl_certificate /tmp/x/cert.pem;');
    expect(local).not.toMatch(/^http2 on;/m);
    const unmarked = (s: string) => s.split('\n').filter((l) => !l.includes('@test:') && !l.includes('/tmp/x') && !l.startsWith('listen 127.0.0.1'));
    expect(unmarked(local)).toEqual(unmarked(example));
  });
});
