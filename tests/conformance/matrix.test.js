'use strict';
// Keeps docs/compatibility.md honest: it must be the rendering of matrix.json; every supported or partial row must be
// covered by a test; every not-supported row with a probe must be refused by the live server, never answered 2xx.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { matrix, render, notes, DOC } = require('./lib/matrix');
const { sdk, platformClient, BASE, WS_BASE, DEPLOYMENT_ID } = require('./lib/parley');
const { Guest } = require('./lib/guest');

test('docs/compatibility.md is generated from matrix.json (run `npm run matrix` after editing it)', () => {
  assert.equal(fs.readFileSync(DOC, 'utf8'), render());
});

test('every row names protocol notes that docs/compatibility.md has', () => {
  const headings = new Set([...notes().matchAll(/^### (.+)$/gm)].map((m) => m[1]));
  const unknown = matrix.rows.flatMap((r) => r.sections.filter((s) => !headings.has(s)).map((s) => `${r.id}: ${s}`));
  assert.deepEqual(unknown, []);
});

test('every supported or partial row is covered by a conformance test', () => {
  const sources = fs.readdirSync(__dirname).filter((f) => f.endsWith('.test.js') && f !== 'matrix.test.js')
    .map((f) => fs.readFileSync(path.join(__dirname, f), 'utf8')).join('\n');
  const covered = new Set([...sources.matchAll(/covers\(([^)]*)\)/g)].flatMap((m) => [...m[1].matchAll(/'([^']+)'/g)].map((x) => x[1])));
  const missing = matrix.rows.filter((r) => r.status !== 'not supported' && !covered.has(r.id)).map((r) => r.id);
  assert.deepEqual(missing, []);
});

for (const row of matrix.rows.filter((r) => r.status === 'not supported' && r.probe)) {
  test(`not supported, and says so: ${row.call}`, async () => {
    if (row.probe.action) {
      const guest = await new Guest(WS_BASE, DEPLOYMENT_ID).connect();
      try {
        await guest.configureSession();
        const { action, ...rest } = row.probe;
        const reply = await guest.request({ action, token: guest.token, ...rest });
        assert.equal(reply.class, 'string', `${action} answered ${JSON.stringify(reply)}`);
        assert.ok(reply.code >= 400, `${action} answered code ${reply.code}`);
      } finally { guest.close(); }
      return;
    }
    await sdk();
    const token = platformClient.ApiClient.instance.authData.accessToken;
    const res = await fetch(BASE + row.probe.path, {
      method: row.probe.method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: row.probe.body ? JSON.stringify(row.probe.body) : undefined,
    });
    assert.ok(res.status >= 400, `${row.probe.method} ${row.probe.path} answered ${res.status}`);
    if (row.probe.method !== 'HEAD') {
      const body = await res.json();
      assert.equal(body.status, res.status);
      assert.match(body.code, /\S/);
    }
  });
}
