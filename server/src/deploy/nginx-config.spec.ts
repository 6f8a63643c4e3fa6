import { localNginxConfig, readNginxTemplate } from './nginx-config.js';

describe('nginx/nginx.conf', () => {
  const template = readNginxTemplate();

  it('streams SSE unbuffered, with long reads over HTTP/1.1 and no Connection header', () => {
    const chat = /location \^~ \/api\/v1\/chat \{([^}]*)\}/.exec(template)?.[1] ?? '';
    expect(chat).toMatch(/proxy_buffering off;/);
    expect(chat).toMatch(/proxy_read_timeout 1h;/);
    expect(template).toMatch(/proxy_http_version 1\.1;/);
    expect(template).toMatch(/proxy_set_header Connection "";/);
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
    expect(local).toContain('listen 127.0.0.1:8081 default_server;');
    expect(local).toContain('server 127.0.0.1:3 max_fails=1 fail_timeout=10s;');
    expect(local).not.toContain('backend-1');
    expect(local).not.toMatch(/^\s*user /m);
    expect(local).toContain('proxy_temp_path /tmp/x/proxy_temp;');
    const unmarked = (s: string) => s.split('\n').filter((l) => !l.includes('@test:') && !l.includes('/tmp/x') && !/(server|listen) 127\.0\.0\.1/.test(l));
    expect(unmarked(local)).toEqual(unmarked(template));
  });
});
