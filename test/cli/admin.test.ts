/**
 * `tpx accounts|keys|webhooks` against a real server: every command goes through the admin
 * API only, prints a readable table by default and raw JSON with --json.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { runCli, stopAllCli, type CliResult } from './run-cli.js';

// Each step spawns a CLI process; on a loaded 2-core machine that can take seconds.
vi.setConfig({ testTimeout: 120_000 });

let server: TestServer;
let env: Record<string, string>;

beforeAll(async () => {
  server = await startTestServer();
  env = { TPX_URL: server.url, TPX_ADMIN_TOKEN: server.adminToken };
});
afterAll(async () => {
  await stopAllCli();
  await stopAll();
});

function ok(r: CliResult): CliResult {
  expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
  return r;
}

function json<T = any>(r: CliResult): T {
  return JSON.parse(ok(r).stdout) as T;
}

async function createAccount(args: string[] = []): Promise<string> {
  const a = json(await runCli(['accounts', 'create', ...args, '--json'], { env }));
  return a.account_id as string;
}

describe('tpx accounts', () => {
  it('create prints the account and the next step; list shows it as a table', async () => {
    const created = ok(await runCli(['accounts', 'create', '--name', 'Acme Tickets', '--partner-id', 'partner_acme'], { env }));
    const id = /account_id:\s+(\S+)/.exec(created.stdout)?.[1];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.stdout).toMatch(/partner_id:\s+partner_acme/);
    expect(created.stderr).toContain(`tpx keys create --account ${id}`);

    const list = ok(await runCli(['accounts', 'list'], { env }));
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ACCOUNT_ID\s+NAME\s+PARTNER_ID\s+ROOMS\s+CREATED_AT$/);
    expect(lines.some((l) => l.startsWith(id!) && l.includes('Acme Tickets') && l.includes('partner_acme'))).toBe(true);

    const listJson = json(await runCli(['accounts', 'list', '--json'], { env }));
    const accounts = Array.isArray(listJson) ? listJson : listJson.accounts;
    expect(accounts.map((a: { account_id: string }) => a.account_id)).toContain(id);
  });

  it('create --rooms restricts access; get and update round-trip through the API', async () => {
    const id = await createAccount(['--name', 'Payments only', '--rooms', 'PAYMENT_CHARGED,PAYMENT_SETTLED']);
    const got = json(await runCli(['accounts', 'get', id, '--json'], { env }));
    expect(got.rooms).toEqual(['PAYMENT_CHARGED', 'PAYMENT_SETTLED']);

    const updated = json(await runCli(['accounts', 'update', id, '--name', 'Renamed', '--rooms', 'ALL', '--json'], { env }));
    expect(updated.name).toBe('Renamed');
    expect(updated.rooms).toHaveLength(11);
    const viaApi = await api(server, 'GET', `/admin/accounts/${id}`);
    expect(viaApi.body.name).toBe('Renamed');
  });

  it('delete removes it; then get is a clean NOT_FOUND error', async () => {
    const id = await createAccount();
    ok(await runCli(['accounts', 'delete', id], { env }));
    const r = await runCli(['accounts', 'get', id], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: NOT_FOUND: .*\[HTTP 404\]\n$/);
  });

  it('a wrong admin token is a clean UNAUTHORIZED error', async () => {
    const r = await runCli(['accounts', 'list', '--admin-token', 'wrong'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: .*\[HTTP 401\]\n$/);
  });
});

describe('tpx keys', () => {
  it('create → list → deactivate → activate → revoke round trip', async () => {
    const accountId = await createAccount(['--name', 'keys']);
    const created = ok(await runCli(['keys', 'create', '--account', accountId, '--name', 'bot', '--expires-at', '2099-01-01T00:00:00Z'], { env }));
    const token = /token:\s+(\S+)/.exec(created.stdout)?.[1];
    const keyId = /key_id:\s+(\S+)/.exec(created.stdout)?.[1];
    expect(token).toMatch(/^tp_live_/);
    expect(keyId).toBeTruthy();
    expect(created.stderr).toMatch(/shown only once/);

    const list = ok(await runCli(['keys', 'list', '--account', accountId], { env }));
    expect(list.stdout).toMatch(/^KEY_ID\s+NAME\s+PREFIX\s+STATUS/);
    const row = list.stdout.split('\n').find((l) => l.startsWith(keyId!));
    expect(row).toMatch(/\bbot\b.*\bactive\b.*2099-01-01/);
    expect(list.stdout).not.toContain(token!); // never shows tokens

    const status = async () => {
      const l = json(await runCli(['keys', 'list', '--account', accountId, '--json'], { env }));
      const keys = Array.isArray(l) ? l : l.api_keys;
      return keys.find((k: { key_id: string }) => k.key_id === keyId)?.status as string | undefined;
    };

    ok(await runCli(['keys', 'deactivate', keyId!], { env }));
    expect(await status()).toBe('inactive');
    ok(await runCli(['keys', 'activate', keyId!], { env }));
    expect(await status()).toBe('active');
    const revoked = ok(await runCli(['keys', 'revoke', keyId!], { env }));
    expect(revoked.stdout).toContain(`key ${keyId} revoked`);
    expect(await status()).not.toBe('active');
  });

  it('create for an unknown account is a clean error', async () => {
    const r = await runCli(['keys', 'create', '--account', '00000000-0000-4000-8000-000000000000'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: .*\[HTTP 404\]\n$/);
  });
});

describe('tpx webhooks add/list/remove', () => {
  it('round trip', async () => {
    const accountId = await createAccount(['--name', 'hooks']);
    const added = json(await runCli(['webhooks', 'add', '--account', accountId, '--url', 'http://127.0.0.1:9/hook', '--json'], { env }));
    expect(added.webhook_id).toBeTruthy();
    expect(added.secret).toMatch(/^whsec_/);

    const list = ok(await runCli(['webhooks', 'list', '--account', accountId], { env }));
    expect(list.stdout).toMatch(/^WEBHOOK_ID\s+URL/);
    expect(list.stdout).toContain(added.webhook_id);
    expect(list.stdout).toContain('http://127.0.0.1:9/hook');

    ok(await runCli(['webhooks', 'remove', added.webhook_id], { env }));
    const after = ok(await runCli(['webhooks', 'list', '--account', accountId], { env }));
    expect(after.stdout).not.toContain(added.webhook_id);
  });

  it('add with an explicit secret keeps it', async () => {
    const accountId = await createAccount();
    const secret = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
    const added = json(await runCli(['webhooks', 'add', '--account', accountId, '--url', 'http://127.0.0.1:9/h2', '--secret', secret, '--json'], { env }));
    expect(added.secret).toBe(secret);
  });
});
