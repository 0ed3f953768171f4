import { AxeBuilder } from '@axe-core/playwright';
import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/db.js';
import { API, startConsoleServer, type ConsoleServer } from './server.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = 'docs/console';

let s: ConsoleServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let op: string;
let relId: string;
let wfId: string;
let endingId: string;
/** Every request the console made to anything but this server. */
const outside: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  s = await startConsoleServer();
  op = s.token('operator');
  const vendor = s.token('vendor', 'vendor-b');
  const rel = await s.api('POST', `${API}/relationships`, vendor, { vendorId: 'vendor-b', partnerId: 'partner-b', relationshipType: 'INTEGRATION' });
  relId = rel.body.id;
  await s.api('POST', `${API}/relationships/${relId}/activate`, vendor);
  // one that ends itself on a date: a pending durable timer
  endingId = (await s.api('POST', `${API}/relationships`, vendor, { vendorId: 'vendor-b', partnerId: 'partner-t', relationshipType: 'REFERRAL' })).body.id;
  await s.api('POST', `${API}/relationships/${endingId}/activate`, vendor);
  await s.api('PUT', `${API}/relationships/${endingId}`, vendor, { endDate: '2027-01-01T00:00:00Z' });
  const wf = await s.api('POST', `${API}/workflows`, op, {
    name: 'Integration Setup',
    workflowType: 'INTEGRATION_SETUP',
    vendorId: 'vendor-b',
    partnerId: 'partner-b',
    steps: [
      { stepNumber: 1, name: 'Validate Configuration', status: 'NOT_STARTED', estimatedDuration: 5 },
      { stepNumber: 2, name: 'Configure API Access', status: 'NOT_STARTED', estimatedDuration: 10, dependencies: [1] },
      { stepNumber: 3, name: 'Go live', status: 'NOT_STARTED', estimatedDuration: 10, dependencies: [2] },
    ],
    estimatedDuration: 25,
  });
  wfId = wf.body.id;
  await s.api('POST', `${API}/workflows/${wfId}/start`, op);
  await s.api('POST', `${API}/workflows/${wfId}/steps/${wf.body.steps[0].id}/execute`, op);
  await s.api('POST', `${API}/workflows/${wfId}/steps/${wf.body.steps[0].id}/complete`, op, { output: { ok: true } });
  // a message the relationship refused once: replayable from the console
  await s.services.runtime.database.pool.query(
    `INSERT INTO dead_letters (origin, reason, subject, actor_type, actor_id, message_id, payload, error, attempts)
     VALUES ('outbox', 'rejected', $1, 'relationship', $2, 'console-dl-1', '{"type":"relationship.activate"}', 'does not accept relationship.activate', 3)`,
    [`concord.actor.relationship.${relId}`, relId],
  );

  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  // the console must work offline: anything not from this server fails, and fails the test
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.origin === s.url) return route.continue();
    outside.push(u.href);
    return route.abort('blockedbyclient');
  });
  page = await context.newPage();
  page.on('dialog', (d) => void d.accept()); // the confirmations
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await s?.close();
});

const T = { timeout: 5_000, interval: 20 };
const text = (l: Locator) => expect.poll(async () => ((await l.count()) ? await l.first().textContent() : ''), T);
const count = (l: Locator) => expect.poll(() => l.count(), T);
const attr = (l: Locator, name: string) => expect.poll(async () => ((await l.count()) ? await l.first().getAttribute(name) : null), T);
const marker = () => page.evaluate(() => (globalThis as unknown as { marker?: number }).marker);

async function accessible(name: string) {
  const r = await new AxeBuilder({ page }).analyze();
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${name}: ${v.id} (${v.impact}) ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
}

describe('the operator console in a real browser', () => {
  it('signs in with an operator token (an HttpOnly, SameSite=Strict cookie) and is not a way into the API', async () => {
    await page.goto(`${s.url}/console/actors`);
    expect(new URL(page.url()).pathname).toBe('/console/login');
    await accessible('login');
    await page.screenshot({ path: `${SHOTS}/login.png` });
    await page.fill('#token', s.token('vendor', 'vendor-b'));
    await page.click('button[type=submit]');
    await text(page.locator('.flash.error')).toContain('operator');
    await page.fill('#token', op);
    await page.click('button[type=submit]');
    await page.waitForURL(`${s.url}/console/actors`);
    const cookie = (await context.cookies()).find((c) => c.name === 'concord_console')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/console' });
    // the cookie does not open the API
    const api = await page.evaluate(async () => (await fetch('/api/v1/actors')).status);
    expect(api).toBe(401);
  });

  it('finds an actor by search, with counts', async () => {
    await page.selectOption('#f-type', 'relationship');
    await page.fill('#f-state', 'active');
    await page.click('form.search button[type=submit]');
    await page.waitForURL(/type=relationship/);
    await text(page.locator('.counts')).toContain('ACTIVE');
    await count(page.locator(`tr[data-actor="relationship/${relId}"]`)).toBe(1);
    await accessible('actors');
    await page.screenshot({ path: `${SHOTS}/actors.png`, fullPage: true });
    await page.click(`tr[data-actor="relationship/${relId}"] a`);
    await page.waitForURL(`${s.url}/console/actors/relationship/${relId}`);
  });

  it('draws the statechart with the current state marked, and the accepted events as buttons', async () => {
    await attr(page.locator('svg.statechart [data-state="active.open"]'), 'aria-current').toBe('true');
    expect(await page.locator('svg.statechart [aria-current="true"]').count()).toBe(1);
    expect(await page.locator('svg.statechart [data-state]').count()).toBeGreaterThan(8);
    expect(await page.locator('svg.statechart .transition path').count()).toBeGreaterThan(5);
    const events = await page.locator('[data-event]').evaluateAll((els) => els.map((e) => e.getAttribute('data-event')));
    expect(events).toEqual(['relationship.suspend', 'relationship.terminate', 'relationship.update']);
    await accessible('actor');
    await page.screenshot({ path: `${SHOTS}/actor.png`, fullPage: true });
  });

  it('sends an accepted event with a reason; the journal and the chart update without a reload', async () => {
    await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 42)); // gone if the page reloads
    await page.click('[data-event="relationship.suspend"]'); // no reason yet: refused, nothing sent
    await text(page.locator('#flash .flash.error')).toContain('reason');
    await page.fill('#reason', 'vendor asked to pause the integration');
    await page.fill('#payload', '{"reason":"vendor request"}');
    await page.click('[data-event="relationship.suspend"]');
    await text(page.locator('#flash .flash.ok')).toContain('relationship.suspend');
    await text(page.locator('#journal li[data-version="3"]')).toContain('relationship.suspend');
    await attr(page.locator('svg.statechart [aria-current="true"]'), 'data-state').toMatch(/^suspended/);
    expect(await marker()).toBe(42);
    const audit = await s.services.runtime.database.pool.query(`SELECT action, reason FROM audit_log WHERE object_id = $1 AND action = 'actor.send'`, [relId]);
    expect(audit.rows).toEqual([{ action: 'actor.send', reason: 'vendor asked to pause the integration' }]);
  });

  it('shows a change made elsewhere (the API) live', async () => {
    const t0 = Date.now();
    const r = await s.api('POST', `/api/v1/actors/relationship/${relId}/send`, op, { event: { type: 'relationship.reactivate' }, reason: 'resolved' });
    if (r.status !== 200) {
      // whatever the machine calls it: send the first event the console offers now
      const ev = await page.locator('[data-event]').first().getAttribute('data-event');
      expect((await s.api('POST', `/api/v1/actors/relationship/${relId}/send`, op, { event: { type: ev }, reason: 'resolved' })).status).toBe(200);
    }
    await count(page.locator('#journal li[data-version="4"]')).toBe(1);
    console.log(`live journal update reached the browser ${Date.now() - t0} ms after the API call was made`);
    expect(await marker()).toBe(42);
  });

  it('pauses and resumes', async () => {
    await page.fill('#reason', 'incident 7');
    await page.click('[data-action="pause"]');
    await text(page.locator('.run-state .badge.paused')).toContain('paused by operator-tester');
    await expect.poll(() => page.locator('[data-event]').first().isDisabled(), T).toBe(true);
    const paused = await s.api('GET', `/api/v1/actors/relationship/${relId}`, op);
    expect(paused.body.paused).toMatchObject({ by: 'operator-tester', reason: 'incident 7' });
    await page.screenshot({ path: `${SHOTS}/actor-paused.png`, fullPage: true });
    await page.click('[data-action="resume"]');
    await count(page.locator('.run-state .badge.running')).toBe(1);
    expect((await s.api('GET', `/api/v1/actors/relationship/${relId}`, op)).body.paused).toBeNull();
  });

  it('shows a workflow with its steps done, running and remaining', async () => {
    await page.goto(`${s.url}/console/actors/workflow/${wfId}`);
    await count(page.locator('tr.step[data-step-phase="done"]')).toBe(1);
    await text(page.locator('.step-summary')).toContain('1 done');
    expect(await page.locator('svg.statechart [aria-current="true"]').count()).toBeGreaterThan(0);
    await accessible('workflow');
    await page.screenshot({ path: `${SHOTS}/workflow.png`, fullPage: true });
  });

  it('replays a dead letter', async () => {
    await page.goto(`${s.url}/console/dead-letters`);
    const row = page.locator('tr[data-dead-letter]').first();
    const id = await row.getAttribute('data-dead-letter');
    await accessible('dead letters');
    await page.screenshot({ path: `${SHOTS}/dead-letters.png`, fullPage: true });
    await page.click(`[data-replay="${id}"]`); // no reason: refused, not replayed
    await text(page.locator('#flash .flash.error')).toContain('reason');
    await count(page.locator(`[data-replay="${id}"]`)).toBe(1);
    await page.fill('#reason', 'the relationship accepts it now');
    await page.click(`[data-replay="${id}"]`);
    await text(page.locator(`tr[data-dead-letter="${id}"]`)).toContain('replayed');
    await waitFor('replayed_at', async () => (await s.services.runtime.database.pool.query(`SELECT replayed_at FROM dead_letters WHERE id = $1`, [id])).rows[0].replayed_at);
  });

  it('fires a pending timer now from the timers page', async () => {
    await page.goto(`${s.url}/console/timers?type=relationship`);
    const row = page.locator('tr[data-timer]').first();
    await count(row).toBe(1);
    await accessible('timers');
    await page.screenshot({ path: `${SHOTS}/timers.png` });
    await page.fill('#reason', 'end it today');
    await row.locator('button', { hasText: 'Fire now' }).click();
    await text(page.locator('#flash .flash.ok')).toContain('Due now');
    await waitFor('the relationship to end', async () => (await s.api('GET', `/api/v1/actors/relationship/${endingId}`, op)).body.status === 'TERMINATED');
  });

  it('shows integrations and playbook executions (none here) without accessibility problems', async () => {
    for (const p of ['integrations', 'executions']) {
      await page.goto(`${s.url}/console/${p}`);
      expect(await page.locator('h1').textContent()).toBeTruthy();
      await accessible(p);
    }
  });

  it('made no request to any other host', () => {
    expect(outside).toEqual([]);
  });
});

describe('shutdown', () => {
  it('ends open live streams when the services stop watching (SIGTERM does this before closing the server)', async () => {
    const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const res = await fetch(`${s.url}/console/actors/relationship/${relId}/live?after=0`, { headers: { cookie } });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    await reader.read();
    s.services.watch.stop();
    for (;;) if ((await reader.read()).done) break;
    expect(s.services.watch.size).toBe(0);
  });
});
