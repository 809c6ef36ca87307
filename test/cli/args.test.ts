/**
 * Argument validation of `tpx`: every bad input exits 1 with a one-line, specific message on
 * stderr and no stack trace. None of these need a server (validation happens first; where a
 * URL is needed it points at a closed port).
 */
import { describe, expect, it, vi } from 'vitest';
import { runCli, type CliResult } from './run-cli.js';

// Each case spawns CLI processes; on a loaded 2-core machine that can take seconds.
vi.setConfig({ testTimeout: 90_000 });

const NO_SERVER = { TPX_URL: 'http://127.0.0.1:9', TPX_ADMIN_TOKEN: 'adm_test' };

function expectCleanFailure(r: CliResult, message: RegExp): void {
  expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(1);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/); // no stack trace
}

describe('tpx argument validation', () => {
  it('--help lists every command and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ['serve', 'accounts', 'keys', 'webhooks', 'deliveries', 'publish', 'publish-batch', 'listen', 'simulate', 'bench']) {
      expect(r.stdout).toContain(cmd);
    }
  });

  it('unknown command suggests the closest one', async () => {
    const r = await runCli(['acounts', 'list']);
    expectCleanFailure(r, /unknown command 'acounts'[\s\S]*accounts/);
  });

  it('publish: unknown event type lists the valid types', async () => {
    const r = await runCli(['publish', 'BID_REQUESTED', '--account', 'a1', '--sample'], { env: NO_SERVER });
    expectCleanFailure(r, /unknown event type "BID_REQUESTED"/);
    expect(r.stderr).toContain('PAYMENT_SETTLED');
  });

  it('publish: wrong case gets a did-you-mean hint', async () => {
    const r = await runCli(['publish', 'bid_request', '--broadcast', '--sample'], { env: NO_SERVER });
    expectCleanFailure(r, /did you mean BID_REQUEST\?/);
  });

  it('publish: needs recipients', async () => {
    const r = await runCli(['publish', 'BID_REQUEST', '--sample'], { env: NO_SERVER });
    expectCleanFailure(r, /--account <id>.*or --broadcast/);
  });

  it('publish: needs a payload', async () => {
    const r = await runCli(['publish', 'BID_REQUEST', '--broadcast'], { env: NO_SERVER });
    expectCleanFailure(r, /missing payload/);
  });

  it('publish: invalid inline JSON', async () => {
    const r = await runCli(['publish', 'BID_REQUEST', '--broadcast', '--payload', '{"conversation_id": '], { env: NO_SERVER });
    expectCleanFailure(r, /invalid JSON in --payload/);
  });

  it('publish: missing payload file', async () => {
    const r = await runCli(['publish', 'BID_REQUEST', '--broadcast', '--payload', 'no-such-file.json'], { env: NO_SERVER });
    expectCleanFailure(r, /file not found: no-such-file\.json/);
  });

  it('publish: payload that fails the event schema names the failing fields', async () => {
    const r = await runCli(['publish', 'CONDITIONAL_BID_STATUS_CHANGE', '--broadcast', '--payload', '{"status":"FILLED"}'], { env: NO_SERVER });
    expectCleanFailure(r, /payload\.conditional_bid_id: is required/);
  });

  it('publish: payload from stdin is validated too', async () => {
    const r = await runCli(['publish', 'CONDITIONAL_BID_STATUS_CHANGE', '--broadcast', '--payload', '-'], {
      env: NO_SERVER,
      input: '{"conditional_bid_id":"cb_1","status":"NOPE"}',
    });
    expectCleanFailure(r, /payload\.status/);
  });

  it('publish: invalid --msg-id', async () => {
    const r = await runCli(['publish', 'BID_REQUEST', '--broadcast', '--sample', '--msg-id', 'abc'], { env: NO_SERVER });
    expectCleanFailure(r, /invalid --msg-id "abc"/);
  });

  it('publish: --account and --broadcast together', async () => {
    const r = await runCli(['publish', 'BID_REQUEST', '--broadcast', '--account', 'a1', '--sample'], { env: NO_SERVER });
    expectCleanFailure(r, /mutually exclusive/);
  });

  it('invalid ids are refused before any request', async () => {
    const r = await runCli(['accounts', 'get', '../admin'], { env: NO_SERVER });
    expectCleanFailure(r, /invalid account id "\.\.\/admin"/);
    const k = await runCli(['keys', 'list', '--account', 'a b'], { env: NO_SERVER });
    expectCleanFailure(k, /invalid account id "a b"/);
  });

  it('listen: unknown room names the valid rooms', async () => {
    const r = await runCli(['listen', '--token', 'tp_live_x', '--rooms', 'ALL,bid_request'], { env: NO_SERVER });
    expectCleanFailure(r, /unknown room bid_request .*case-sensitive.*BID_REQUEST/);
  });

  it('listen and webhooks forward: an API key is required (--token or TPX_API_KEY)', async () => {
    const r = await runCli(['listen'], { env: NO_SERVER });
    expectCleanFailure(r, /missing API key: pass --token <tp_live_…> or set TPX_API_KEY/);
    const f = await runCli(['webhooks', 'forward', '--to', 'http://127.0.0.1:9/hook'], { env: NO_SERVER });
    expectCleanFailure(f, /missing API key: pass --token <tp_live_…> or set TPX_API_KEY/);
  });

  it('did you mean: near-miss event types, rooms and commands', async () => {
    const t = await runCli(['publish', 'BID_REQEST', '--broadcast', '--sample'], { env: NO_SERVER });
    expectCleanFailure(t, /unknown event type "BID_REQEST" \(did you mean BID_REQUEST\?\)/);
    const far = await runCli(['publish', 'HELLO', '--broadcast', '--sample'], { env: NO_SERVER });
    expectCleanFailure(far, /unknown event type "HELLO"\. Valid types:/);
    const r = await runCli(['listen', '--token', 'tp_live_x', '--rooms', 'BID_OUTBIT,PAYMENT_SETTLD'], { env: NO_SERVER });
    expectCleanFailure(r, /unknown rooms BID_OUTBIT \(did you mean BID_OUTBID\?\), PAYMENT_SETTLD \(did you mean PAYMENT_SETTLED\?\)/);
    const a = await runCli(['accounts', 'create', '--rooms', 'payment_failed'], { env: NO_SERVER });
    expectCleanFailure(a, /unknown room payment_failed \(did you mean PAYMENT_FAILED\?\)/);
    const c = await runCli(['accounts', 'craete'], { env: NO_SERVER });
    expectCleanFailure(c, /unknown command 'craete'[\s\S]*Did you mean create\?/);
    const o = await runCli(['publish', 'BID_REQUEST', '--broadcast', '--sampel'], { env: NO_SERVER });
    expectCleanFailure(o, /unknown option '--sampel'[\s\S]*Did you mean --sample\?/);
  });

  it('publish: a --payload that is neither JSON nor a file says so (not "file not found")', async () => {
    const r = await runCli(['publish', 'BID_REQUEST', '--broadcast', '--payload', 'not json'], { env: NO_SERVER });
    expectCleanFailure(r, /--payload "not json" is neither JSON nor a file: pass a JSON object such as/);
    expect(r.stderr).not.toMatch(/file not found/);
  });

  it('listen: --after-seq must be an integer ≥ 0', async () => {
    const r = await runCli(['listen', '--token', 'tp_live_x', '--after-seq', '-3'], { env: NO_SERVER });
    expect(r.code).toBe(1);
    const r2 = await runCli(['listen', '--token', 'tp_live_x', '--after-seq', '1.5'], { env: NO_SERVER });
    expectCleanFailure(r2, /expected an integer ≥ 0, got "1\.5"/);
  });

  it('durations: a plain number means seconds (simulate --duration 30 runs 30 s, not 30 ms)', async () => {
    const r = await runCli(['simulate', '--account', 'a1', '--duration', '30', '--rate', '50/s'], { env: NO_SERVER });
    expect(r.stderr).toMatch(/simulating 50\/s to 1 account\(s\), for 30s/);
    const ms = await runCli(['simulate', '--account', 'a1', '--duration', '1500ms', '--rate', '50/s'], { env: NO_SERVER });
    expect(ms.stderr).toMatch(/for 1\.5s/);
  });

  it('simulate: bad rate and duration', async () => {
    const r = await runCli(['simulate', '--account', 'a1', '--rate', '5/fortnight'], { env: NO_SERVER });
    expectCleanFailure(r, /invalid rate "5\/fortnight"/);
    const d = await runCli(['simulate', '--account', 'a1', '--duration', 'soon'], { env: NO_SERVER });
    expectCleanFailure(d, /Invalid duration: "soon"/);
    const c = await runCli(['simulate', '--account', 'a1', '--count', '0'], { env: NO_SERVER });
    expectCleanFailure(c, /expected a positive integer, got "0"/);
  });

  it('keys create: invalid --expires-at', async () => {
    const r = await runCli(['keys', 'create', '--account', 'a1', '--expires-at', 'next tuesday'], { env: NO_SERVER });
    expectCleanFailure(r, /invalid ISO-8601 date-time "next tuesday"/);
  });

  it('accounts create: invalid --rooms', async () => {
    const r = await runCli(['accounts', 'create', '--rooms', 'BID_REQUEST,PAYMENTS'], { env: NO_SERVER });
    expectCleanFailure(r, /unknown room PAYMENTS/);
  });

  it('webhooks add: invalid endpoint URL and secret', async () => {
    const r = await runCli(['webhooks', 'add', '--account', 'a1', '--url', 'ftp://example.com/x'], { env: NO_SERVER });
    expectCleanFailure(r, /URL must use http:\/\/ or https:\/\//);
    const s = await runCli(['webhooks', 'add', '--account', 'a1', '--url', 'https://example.com/x', '--secret', 'whsec_hunter2'], { env: NO_SERVER });
    expectCleanFailure(s, /invalid --secret/);
  });

  it('webhooks rotate-secret: invalid --grace', async () => {
    const r = await runCli(['webhooks', 'rotate-secret', 'wh_1', '--grace', 'a while'], { env: NO_SERVER });
    expectCleanFailure(r, /Invalid duration/);
  });

  it('deliveries retry: needs an id or --account --failed', async () => {
    const r = await runCli(['deliveries', 'retry'], { env: NO_SERVER });
    expectCleanFailure(r, /missing <delivery_id>/);
    const f = await runCli(['deliveries', 'retry', '--account', 'a1'], { env: NO_SERVER });
    expectCleanFailure(f, /needs --failed/);
    const b = await runCli(['deliveries', 'retry', 'd1', '--account', 'a1', '--failed'], { env: NO_SERVER });
    expectCleanFailure(b, /either a <delivery_id> or --account/);
  });

  it('publish-batch: rejects a file that is not a list of events', async () => {
    const r = await runCli(['publish-batch', '--file', '-'], { env: NO_SERVER, input: '{"nope":1}' });
    expectCleanFailure(r, /expected a non-empty array of events/);
    const t = await runCli(['publish-batch', '--file', '-'], { env: NO_SERVER, input: '[{"msg_type":"BOGUS","payload":{}}]' });
    expectCleanFailure(t, /events\[0\]: unknown event type "BOGUS"/);
  });

  it('a client command without an admin token explains where it looks', async () => {
    const r = await runCli(['accounts', 'list'], { env: { TPX_URL: 'http://127.0.0.1:9' } });
    expectCleanFailure(r, /no admin token: pass --admin-token, set TPX_ADMIN_TOKEN/);
  });

  it('an unreachable server is one clear line', async () => {
    const r = await runCli(['accounts', 'list'], { env: NO_SERVER });
    expectCleanFailure(r, /cannot reach the server at http:\/\/127\.0\.0\.1:9/);
  });

  it('invalid --url', async () => {
    const r = await runCli(['accounts', 'list', '--url', 'not a url'], { env: NO_SERVER });
    expectCleanFailure(r, /invalid server URL "not a url"/);
  });

  it('serve: invalid --port', async () => {
    const r = await runCli(['serve', '--port', '70000']);
    expectCleanFailure(r, /expected a port 0-65535, got "70000"/);
  });

  it('serve: invalid configuration from the environment is one line', async () => {
    const r = await runCli(['serve'], { env: { TPX_PING_INTERVAL_MS: 'often' } });
    expectCleanFailure(r, /configuration: TPX_PING_INTERVAL_MS must be an integer/);
  });
});
