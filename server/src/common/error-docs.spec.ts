import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode } from './error-code.js';
import { HTTP_STATUS } from './error-status.js';

describe('the error table of docs/api-contract.md', () => {
  it('lists every code the API answers with, at the status it is sent with, once', () => {
    const contract = readFileSync(join(__dirname, '../../../docs/api-contract.md'), 'utf8');
    const rows = [...contract.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])] as const);
    // PAYLOAD_TOO_LARGE (a JSON body over its limit) was answered but documented nowhere.
    expect(new Map(rows)).toEqual(new Map(Object.values(ErrorCode).map((code) => [code, Number(HTTP_STATUS[code])])));
    expect(rows).toHaveLength(Object.values(ErrorCode).length);
  });
});
