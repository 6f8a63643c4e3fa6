import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { settingNames } from './app-config.js';
import { editDistance, misspeltSettings } from './misspelt-settings.js';

describe('editDistance (optimal string alignment)', () => {
  it('counts insertions, deletions, substitutions and swaps of neighbours as one edit each', () => {
    expect(editDistance('PORT', 'PORT')).toBe(0);
    expect(editDistance('PORT', 'PORTS')).toBe(1);
    expect(editDistance('PORT', 'POT')).toBe(1);
    expect(editDistance('PORT', 'PART')).toBe(1);
    expect(editDistance('PORT', 'PROT')).toBe(1);
    expect(editDistance('HOME', 'HOST')).toBe(2);
    expect(editDistance('', 'ABC')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });
});

describe('misspeltSettings', () => {
  it('knows every variable .env.example documents, read from the validated Env class', () => {
    const example = readFileSync(join(__dirname, '..', '..', '..', '.env.example'), 'utf8').split('# --- docker-compose only ---')[0];
    const documented = [...example.matchAll(/^#? ?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]);
    expect(documented.length).toBeGreaterThan(40);
    expect(settingNames()).toEqual(expect.arrayContaining(documented));
    expect(settingNames()).toEqual(expect.arrayContaining(['SESSION_SECRET', 'MAX_UPLOAD_BYTES', 'PORT', 'READY_MIN_FREE_BYTES']));
  });

  it('names a near-miss of a setting with the setting it meant: a typo, a swap, another case, a missing underscore or S', () => {
    const env = {
      SESSION_SECRETT: 'secret-value-never-logged',
      MAX_UPLOAD_BYTE: '1000',
      OPENAI_MODLE: 'x',
      session_secret: 'y',
      MAXUPLOADBYTES: '1',
      SESSIONTOKENTTLSECONDS: '60',
      ALLOWED_HOST: 'a',
      PORTS: '80',
    };
    expect(misspeltSettings(env)).toEqual([
      { name: 'SESSION_SECRETT', suggestion: 'SESSION_SECRET' },
      { name: 'MAX_UPLOAD_BYTE', suggestion: 'MAX_UPLOAD_BYTES' },
      { name: 'OPENAI_MODLE', suggestion: 'OPENAI_MODEL' },
      { name: 'session_secret', suggestion: 'SESSION_SECRET' },
      { name: 'MAXUPLOADBYTES', suggestion: 'MAX_UPLOAD_BYTES' },
      { name: 'SESSIONTOKENTTLSECONDS', suggestion: 'SESSION_TOKEN_TTL_SECONDS' },
      { name: 'ALLOWED_HOST', suggestion: 'ALLOWED_HOSTS' },
      { name: 'PORTS', suggestion: 'PORT' },
    ]);
    expect(JSON.stringify(misspeltSettings(env))).not.toContain('secret-value-never-logged');
  });

  it('leaves the settings themselves and unrelated variables alone', () => {
    const env: Record<string, string> = {
      SESSION_SECRET: 'x', PORT: '3000', HOST: '0.0.0.0', NODE_ENV: 'production', DATA_DIR: '/data', REDIS_URL: 'redis://r',
      PATH: '/usr/bin', HOME: '/root', HOSTNAME: 'box', USER: 'node', SHELL: '/bin/sh', PWD: '/app', OLDPWD: '/', TERM: 'xterm',
      LANG: 'C.UTF-8', TZ: 'UTC', SHLVL: '1', _: '/usr/bin/node', NODE_VERSION: '24', YARN_VERSION: '1', NODE_OPTIONS: '', NODE_PATH: '',
      HTTP_PROXY: '', HTTPS_PROXY: '', NO_PROXY: '', CI: '1', DEBUG: '', INIT_CWD: '/app', EDITOR: 'vi', LOGNAME: 'node', MAIL: '',
      POSTGRES_PASSWORD: 'p', POSTGRES_USER: 'u', POSTGRES_DB: 'd', HTTP_PORT: '80', HTTPS_PORT: '443', TMPDIR: '/tmp',
      KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_PORT: 'tcp://10.0.0.1:443', PARLEY_PORT: 'tcp://10.0.0.2:3000', PARLEY_SERVICE_HOST: '10.0.0.2',
      REDIS_PORT: 'tcp://10.0.0.3:6379', REDIS_HOST: 'redis', REDIS_PASSWORD: 'p', OPENAI_ORG_ID: 'o',
      TEST_PG_URL: 'postgres://x', TEST_REDIS_URL: 'redis://x', npm_config_port: '1', npm_package_name: 'parley', npm_lifecycle_event: 'start',
    };
    expect(misspeltSettings(env)).toEqual([]);
  });
});
