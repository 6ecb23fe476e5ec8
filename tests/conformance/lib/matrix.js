'use strict';
// The compatibility matrix: matrix.json is the source; docs/compatibility.md is rendered from it down to the marker
// line of its protocol notes, which are written by hand and kept as they are.
const fs = require('node:fs');
const path = require('node:path');

const matrix = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'matrix.json'), 'utf8'));
const ids = new Set(matrix.rows.map((r) => r.id));
const DOC = path.join(__dirname, '..', '..', '..', 'docs', 'compatibility.md');
const NOTES_MARKER = '<!-- Protocol notes: written by hand from this line on; `npm run matrix` rewrites only what is above it. -->';

/** The hand-written protocol notes of the current document, from their marker line on. */
function notes() {
  const doc = fs.existsSync(DOC) ? fs.readFileSync(DOC, 'utf8') : '';
  const at = doc.indexOf(NOTES_MARKER);
  if (at < 0) throw new Error(`${DOC} lost its protocol notes marker line: ${NOTES_MARKER}`);
  return doc.slice(at);
}

/** GitHub's anchor for a heading: lower case, spaces to dashes, punctuation dropped. */
function anchor(heading) {
  return heading.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-');
}

/** Marks what a test proves; an id that is not in matrix.json is a mistake in the test. */
function covers(...rowIds) {
  for (const id of rowIds) if (!ids.has(id)) throw new Error(`covers('${id}'): no such row in matrix.json`);
}

function counts() {
  const c = { supported: 0, partial: 0, 'not supported': 0 };
  for (const r of matrix.rows) c[r.status] += 1;
  return c;
}

function render() {
  const c = counts();
  const lines = [
    '# Compatibility matrix',
    '',
    'Every Genesys Cloud messaging endpoint and Guest API action (from the public Genesys Cloud developer documentation and the official SDKs), and what Parley does with it.',
    'Generated from `tests/conformance/matrix.json` by `npm run matrix` (in `tests/conformance`); the conformance suite fails',
    'when this file differs from that rendering, when a supported or partial row has no test that covers it, or when a',
    'not-supported row answers with success instead of an error.',
    '',
    `**${c.supported} supported, ${c.partial} partial, ${c['not supported']} not supported** (${matrix.rows.length} rows).`,
    '',
  ];
  let surface = null;
  for (const r of matrix.rows) {
    if (r.surface !== surface) {
      surface = r.surface;
      lines.push(`## ${surface}`, '', '| call | status | protocol notes | note |', '|---|---|---|---|');
    }
    const sections = r.sections.map((s) => `[${s}](#${anchor(s)})`).join(', ');
    lines.push(`| ${r.call.replace(/\|/g, '\\|')} | ${r.status} | ${sections} | ${(r.note || '').replace(/\|/g, '\\|')} |`);
    const next = matrix.rows[matrix.rows.indexOf(r) + 1];
    if (!next || next.surface !== surface) lines.push('');
  }
  return lines.join('\n') + '\n' + notes();
}

module.exports = { matrix, covers, counts, render, notes, DOC, NOTES_MARKER, anchor };

if (require.main === module) {
  fs.writeFileSync(DOC, render());
  console.log(`wrote ${DOC}:`, counts());
}
