import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relationshipType } from '../../../machines/relationship.js';
import { workflowType } from '../../../machines/workflow/index.js';
import { BASE, harness, type Harness } from '../harness.js';

let h: Harness;
let op: string;
let relId: string;
let cookie: string;
let csrf: string;

const get = (path: string, headers: Record<string, string> = {}) => h.app.request(path, { headers: { cookie, ...headers } });
const post = (path: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
  h.app.request(path, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', 'hx-request': 'true', ...headers }, body: new URLSearchParams(form).toString() });

async function signIn(token: string): Promise<Response> {
  const form = await h.app.request('/console/login');
  const nonceCookie = form.headers.get('set-cookie')!.split(';')[0]!;
  const nonce = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1]!;
  return h.app.request('/console/login', {
    method: 'POST',
    headers: { cookie: nonceCookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: nonce, token, next: '/console/actors' }).toString(),
  });
}

beforeAll(async () => {
  h = await harness({ types: [relationshipType, workflowType] });
  op = h.token('operator');
  const vendor = h.token('vendor', 'vendor-c');
  const created = await h.call('POST', `${BASE}/relationships`, {
    token: vendor,
    body: { vendorId: 'vendor-c', partnerId: 'partner-c', relationshipType: 'REFERRAL', agreementDetails: { note: '<script>alert(1)</script><img src=x onerror=alert(2)>' } },
  });
  relId = created.body.id;
  const res = await signIn(op);
  expect(res.status).toBe(303);
  cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  csrf = /"x-csrf-token":"([^"]+)"/.exec((await (await get('/console/actors')).text()).replaceAll('&quot;', '"'))![1]!;
});
afterAll(async () => h.close());

describe('console sign-in and session', () => {
  it('sends a page without a session to the sign-in form, keeping where it was going', async () => {
    const res = await h.app.request('/console/actors?type=relationship');
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/console/login?next=%2Fconsole%2Factors%3Ftype%3Drelationship');
    const hx = await h.app.request('/console/actors', { headers: { 'hx-request': 'true' } });
    expect(hx.status).toBe(401);
    expect(hx.headers.get('hx-redirect')).toMatch(/^\/console\/login/);
  });

  it('keeps the operator token in an HttpOnly, SameSite=Strict cookie scoped to /console', async () => {
    const res = await signIn(op);
    const set = res.headers.get('set-cookie')!;
    expect(set).toMatch(/^concord_console=/);
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Strict/);
    expect(set).toMatch(/Path=\/console/);
    expect(res.headers.get('location')).toBe('/console/actors');
  });

  it('refuses a vendor token (403), a bad token (401), and a form without its nonce (403)', async () => {
    expect((await signIn(h.token('vendor', 'vendor-c'))).status).toBe(403);
    const bad = await signIn(`${op.slice(0, -4)}AAAA`);
    expect(bad.status).toBe(401);
    expect(bad.headers.get('set-cookie')).not.toMatch(/concord_console=/);
    const noNonce = await h.app.request('/console/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${op}` });
    expect(noNonce.status).toBe(403);
  });

  it('never sends the sign-in anywhere but the console (no open redirect)', async () => {
    const form = await h.app.request('/console/login?next=//evil.example/x');
    expect(await form.text()).toContain('name="next" value="/console/actors"');
  });

  it('does not open the API: the cookie is not a bearer token', async () => {
    const res = await h.app.request('/api/v1/actors', { headers: { cookie } });
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });

  it('an expired session token signs out', async () => {
    const old = h.token('operator', undefined, { exp: Math.floor(h.clock.now() / 1000) - 1 });
    const res = await h.app.request('/console/actors', { headers: { cookie: `concord_console=${old}` } });
    expect(res.status).toBe(303);
    expect(res.headers.get('set-cookie')).toMatch(/concord_console=;/);
  });
});

describe('console pages', () => {
  it('serve a strict CSP, no inline script or style, and escape what actors hold', async () => {
    const res = await get(`/console/actors/relationship/${relId}`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const html = await res.text();
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // every script is a file
    expect(html).not.toMatch(/<[a-z][^>]*\sstyle=/i);
    expect(html).not.toMatch(/<[a-z][^>]*\son[a-z]+=/i); // no event-handler attribute (the escaped text may say onerror)
    expect(html).not.toContain('<script>alert(1)');
    expect(html).toContain('&lt;script&gt;alert(1)');
  });

  it('draw the chart: a data-state per state, aria-current on the current leaf only, accepted events as buttons', async () => {
    const html = await (await get(`/console/actors/relationship/${relId}`)).text();
    const states = [...html.matchAll(/data-state="([^"]+)"/g)].map((m) => m[1]);
    expect(states).toEqual(expect.arrayContaining(['draft', 'pending', 'pending.open', 'active', 'active.open', 'suspended', 'terminated']));
    expect([...html.matchAll(/data-state="([^"]+)" aria-current="true"/g)].map((m) => m[1])).toEqual(['pending.open']);
    expect([...html.matchAll(/data-event="([^"]+)"/g)].map((m) => m[1])).toEqual(['relationship.activate', 'relationship.terminate', 'relationship.update']);
  });

  it('search: filters by type, state path, tenant and id prefix, with counts', async () => {
    const byState = await (await get('/console/actors?type=relationship&state=pending')).text();
    expect(byState).toContain(`data-actor="relationship/${relId}"`);
    expect(await (await get('/console/actors?state=active.open')).text()).not.toContain(`data-actor="relationship/${relId}"`);
    expect(await (await get(`/console/actors?id=${relId.slice(0, 8)}&tenant=vendor-c`)).text()).toContain(`data-actor="relationship/${relId}"`);
    // LIKE wildcards are literal
    expect(await (await get('/console/actors?id=%25')).text()).not.toContain('data-actor=');
    const counts = await (await get('/console/actors?type=relationship')).text();
    expect(counts).toMatch(/<td>relationship<\/td><td><a href="[^"]+">PENDING<\/a><\/td><td class="num">1<\/td>/);
  });

  it('answer bad input with a 4xx, never a 500', async () => {
    expect((await get('/console/actors?state=%01')).status).toBe(400);
    expect((await get('/console/actors/relationship/nope')).status).toBe(404);
    expect((await get('/console/actors/ghost/x')).status).toBe(404);
    expect((await get('/console/nowhere')).status).toBe(404);
    expect((await get('/console/actors/relationship/nope/live')).status).toBe(404);
    const payload = await post(`/console/actors/relationship/${relId}/send`, { event: 'relationship.activate', payload: '{nope', reason: 'x' }, { 'x-csrf-token': csrf });
    expect(payload.status).toBe(400);
    expect(await payload.text()).toContain('data-code="VALIDATION_FAILED"');
    expect((await post(`/console/actors/relationship/${relId}/send`, { event: 'relationship.activate', payload: '[1]', reason: 'x' }, { 'x-csrf-token': csrf })).status).toBe(400);
    expect((await post(`/console/actors/relationship/${relId}/send`, { event: 'xstate.init', reason: 'x' }, { 'x-csrf-token': csrf })).status).toBe(400);
    expect((await post('/console/timers/1e30/fire', { reason: 'x' }, { 'x-csrf-token': csrf })).status).toBe(400);
    expect((await post('/console/dead-letters/999999/replay', { reason: 'x' }, { 'x-csrf-token': csrf })).status).toBe(404);
    expect((await post('/console/dead-letters/1/replay', { reason: 'x', payload: '{nope' }, { 'x-csrf-token': csrf })).status).toBe(400);
  });
});

describe('console actions', () => {
  it('refuse a request without the CSRF token, with a wrong one, or from another site', async () => {
    const path = `/console/actors/relationship/${relId}/pause`;
    expect((await post(path, { reason: 'r' })).status).toBe(403);
    expect((await post(path, { reason: 'r', _csrf: 'forged' })).status).toBe(403);
    expect((await post(path, { reason: 'r' }, { 'x-csrf-token': csrf, origin: 'https://evil.example' })).status).toBe(403);
    expect((await post(path, { reason: 'r' }, { 'x-csrf-token': csrf, 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await h.call('GET', `/api/v1/actors/relationship/${relId}`, { token: op })).body.paused).toBeNull();
  });

  it('need a reason, then act through the same services as the API, audited', async () => {
    const none = await post(`/console/actors/relationship/${relId}/send`, { event: 'relationship.activate', reason: ' ' }, { 'x-csrf-token': csrf });
    expect(none.status).toBe(400);
    expect(await none.text()).toContain('reason');
    const sent = await post(`/console/actors/relationship/${relId}/send`, { event: 'relationship.activate', reason: 'go live', _csrf: csrf });
    expect(sent.status).toBe(200);
    expect(await sent.text()).toContain('active.open');
    const paused = await post(`/console/actors/relationship/${relId}/pause`, { reason: 'incident' }, { 'x-csrf-token': csrf });
    expect(await paused.text()).toContain('Paused');
    const refused = await post(`/console/actors/relationship/${relId}/send`, { event: 'relationship.suspend', reason: 'x' }, { 'x-csrf-token': csrf });
    expect(refused.status).toBe(409);
    expect(await refused.text()).toContain('data-code="ACTOR_PAUSED"');
    await post(`/console/actors/relationship/${relId}/resume`, { reason: 'over' }, { 'x-csrf-token': csrf });
    const fork = await post(`/console/actors/relationship/${relId}/fork`, { version: '1', reason: 'try again' }, { 'x-csrf-token': csrf });
    expect(fork.status).toBe(200);
    expect(await fork.text()).toContain('.fork-');
    const audit = await h.database.pool.query(`SELECT action, reason, subject FROM audit_log WHERE reason IS NOT NULL AND (object_id = $1 OR object_id LIKE $2) ORDER BY id`, [relId, `${relId}.fork-%`]);
    expect(audit.rows).toEqual([
      { action: 'actor.send', reason: 'go live', subject: 'operator-user' },
      { action: 'actor.pause', reason: 'incident', subject: 'operator-user' },
      { action: 'actor.resume', reason: 'over', subject: 'operator-user' },
      { action: 'actor.fork', reason: 'try again', subject: 'operator-user' },
    ]);
  });

  it('a live page streams the journal entries after the version it was rendered at, then each change', async () => {
    const res = await get(`/console/actors/relationship/${relId}/live?after=1`);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('event: details')) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).toContain('event: journal');
    expect(text).toContain('data-version="2"');
    expect(text).not.toContain('data-version="1"');
    expect(text).toContain('event: state');
    await reader.cancel();
  });
});

describe('console step retry', () => {
  it('offers a failed workflow step a Retry button that retries it through the operator service, audited', async () => {
    const wf = await h.call('POST', `${BASE}/workflows`, {
      token: op,
      body: { name: 'Setup', workflowType: 'INTEGRATION_SETUP', vendorId: 'vendor-c', partnerId: 'partner-c', steps: [{ stepNumber: 1, name: 'Validate', status: 'NOT_STARTED', estimatedDuration: 5 }], estimatedDuration: 5 },
    });
    const wid = wf.body.id as string;
    const sid = wf.body.steps[0].id as string;
    await h.call('POST', `${BASE}/workflows/${wid}/start`, { token: op });
    await h.call('POST', `${BASE}/workflows/${wid}/steps/${sid}/execute`, { token: op });
    const failed = await h.call('POST', `${BASE}/workflows/${wid}/steps/${sid}/complete`, { token: op, body: { status: 'FAILED', errorMessage: 'bad config' } });
    expect(failed.body.steps[0].status).toBe('FAILED');
    const page = await (await get(`/console/actors/workflow/${wid}`)).text();
    expect(page).toContain(`data-retry-step="${sid}"`);
    const retried = await post(`/console/actors/workflow/${wid}/retry`, { step: sid, reason: 'config fixed' }, { 'x-csrf-token': csrf });
    expect(retried.status).toBe(200);
    expect(await retried.text()).toContain('Retried step');
    expect((await h.call('GET', `${BASE}/workflows/${wid}`, { token: op })).body.steps[0].status).not.toBe('FAILED');
    const audit = await h.database.pool.query(`SELECT reason FROM audit_log WHERE object_id = $1 AND action = 'actor.retry'`, [wid]);
    expect(audit.rows).toEqual([{ reason: 'config fixed' }]);
    expect(await (await get(`/console/actors/workflow/${wid}`)).text()).not.toContain('data-retry-step=');
  });
});

describe('console search on a large table', () => {
  it('counts indexed filters exactly, caps a state filter at 10,000, and lists by key past that', async () => {
    await h.database.pool.query(
      `INSERT INTO actors (type, id, tenant, machine_version, version, state_value, status, attrs, snapshot, created_at, updated_at)
       SELECT type, id || '-copy-' || g, tenant, machine_version, version, state_value, status, attrs, snapshot, created_at, updated_at
         FROM actors, generate_series(1, 10050) g WHERE type = 'relationship' AND id = $1`,
      [relId],
    );
    const n = async (sql: string, v: unknown[]) => (await h.database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM actors WHERE ${sql}`, v)).rows[0]!.n;
    const all = await (await get('/console/actors?type=relationship')).text();
    expect(all).toContain(`(${await n(`type = 'relationship'`, [])} matching)`);
    expect(all).toContain('By type and id');
    const byState = await (await get('/console/actors?state=active.open')).text();
    expect(byState).toContain('(more than 10000 matching)');
    expect(byState).toContain('Counted up to the first 10000 matches');
    const few = await (await get(`/console/actors?id=${relId}-copy-1000`)).text();
    expect(few).toContain('Most recently changed');
    expect(few).toContain(`(${await n('id LIKE $1', [`${relId}-copy-1000%`])} matching)`);
  });
});
