'use strict';
// The "Soak" section of bench/RESULTS.md: the figures of one run, written in
// place of the previous run's section (or before "## Rerun" the first time).
const fs = require('node:fs');
const os = require('node:os');

const fmtInt = (n) => Math.round(n).toLocaleString('en-US');

function section(o, s, r) {
  const t = s.ledger.totals;
  const lines = [];
  lines.push('## Soak');
  lines.push('');
  lines.push(`Written by \`bench/soak\` at ${new Date().toISOString().slice(0, 16)}Z (${r.commit}), ${os.cpus().length} cores shared with other work.`);
  lines.push(`Run: \`bench/soak${o.argv.filter((a) => a !== '--out' && !a.includes('/')).map((a) => ` ${a}`).join('')}\` — ${fmtInt(s.ranFor)} s, seed ${o.seed}, ${o.clients} concurrent clients ` +
    `(35 % Socket.IO over WebSocket, 15 % polling only, 10 % polling upgraded, 40 % plain /ws) living ${o.life[0]}–${o.life[1]} s each ` +
    `in ${o.rooms} rooms; targets ${o.msgRate} messages/s, ${o.uploadRate} uploads/s, ${o.refusedRate} refused requests/s, ` +
    `${o.hostileRate} refused connections/s, a reload every ${o.reloadEvery} s; ${o.jwt ? 'JWT (HS256) logins' : 'development-mode logins by name'}.`);
  lines.push('');
  lines.push(`**Verdict: ${r.ok ? 'pass' : 'FAIL'}** — ${r.checks.map((c) => `${c.name}: ${c.ok ? 'ok' : 'FAILED'}`).join('; ')}.`);
  lines.push('');
  lines.push('| check | figures |');
  lines.push('|---|---|');
  for (const c of r.checks) lines.push(`| ${c.name} ${c.ok ? '✓' : '✗'} | ${c.detail} |`);
  lines.push('');
  lines.push('| action | count |');
  lines.push('|---|---|');
  for (const [k, v] of Object.entries(s.count).sort()) lines.push(`| ${k} | ${fmtInt(v)} |`);
  lines.push(`| messages and files delivered (member × send) | ${fmtInt(t.delivered)} |`);
  lines.push(`| downloads of /files/ URLs (bytes compared) | ${fmtInt(s.uploads.downloads)} |`);
  lines.push('');
  lines.push('| refused input | sent | answered as the protocol says |');
  lines.push('|---|---|---|');
  for (const [k, v] of Object.entries(s.refused).sort()) lines.push(`| ${k} | ${v.n} | ${v.answered} |`);
  lines.push('');
  lines.push(`RSS (VmRSS every 2 s): start ${fmtInt(r.rss.start)} KiB, max ${fmtInt(r.rss.max)} KiB, end of run ${fmtInt(r.rss.end)} KiB, ` +
    `idle after ${fmtInt(r.rssIdle)} KiB. Warm-up = the first ${Math.round(o.warmup * 100)} % of the run; ` +
    `mean of the ${fmtInt(r.rss.win)} s after it ${fmtInt(r.rss.firstWindow)} KiB, of the last ${fmtInt(r.rss.win)} s ` +
    `${fmtInt(r.rss.lastWindow)} KiB (${r.rss.growthPct >= 0 ? '+' : ''}${r.rss.growthPct.toFixed(1)} %).`);
  if (r.heap) {
    lines.push(`Heap (glibc malloc_stats at idle, through gdb): ${fmtInt(r.heap.before.inUse)} bytes in use of ${fmtInt(r.heap.before.system)} held before, ` +
      `${fmtInt(r.heap.after.inUse)} of ${fmtInt(r.heap.after.system)} after.`);
  }
  lines.push(`Open files: ${r.fdFresh} fresh, ${r.fdIdle} idle after a primer, ${s.fdMax} at most during the run, ${r.fdAfter} idle after.`);
  lines.push(`Gauges idle before → after: ${r.gauges}. Lua memory ${fmtInt(r.luaBefore)} → ${fmtInt(r.luaAfter)} bytes (not judged: it follows the collector).`);
  lines.push(`Counters over the run: ${r.counters}.`);
  if (s.failureExamples.length || s.ledger.examples.length) {
    lines.push('');
    lines.push('Problems seen (first few):');
    lines.push('');
    for (const e of [...s.failureExamples, ...s.ledger.examples]) lines.push(`- ${e.replace(/\|/g, '\\|')}`);
  }
  lines.push('');
  lines.push('An hour: `bench/soak --duration 1h` (the same mix; RSS is judged on the same windows, scaled).');
  lines.push('');
  return lines.join('\n');
}

function writeSection(file, text) {
  let doc = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmark results\n\n';
  const start = doc.search(/^## Soak$/m);
  if (start >= 0) {
    const rest = doc.slice(start + 1);
    const next = rest.search(/^## /m);
    doc = doc.slice(0, start) + text + '\n' + (next >= 0 ? rest.slice(next) : '');
  } else {
    const rerun = doc.search(/^## Rerun$/m);
    doc = rerun >= 0 ? doc.slice(0, rerun) + text + '\n' + doc.slice(rerun) : doc.replace(/\n*$/, '\n\n') + text;
  }
  fs.writeFileSync(file, doc.replace(/\n{3,}/g, '\n\n'));
}

module.exports = { section, writeSection };
