#!/usr/bin/env node
// What grew between two heap snapshots (the probe's heapSnapshot op): object counts and self
// sizes by type and constructor name, largest growth first.
//   node bench/lib/heap-diff.mjs before.heapsnapshot after.heapsnapshot [rows]
import { readFileSync } from 'node:fs';

export function summarize(path) {
  const snap = JSON.parse(readFileSync(path, 'utf8'));
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const groups = new Map();
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]];
    const name = type === 'string' || type === 'concatenated string' || type === 'sliced string' ? '' : snap.strings[nodes[i + iName]].slice(0, 60);
    const key = `${type} ${name}`;
    const g = groups.get(key) ?? { count: 0, size: 0 };
    g.count++;
    g.size += nodes[i + iSize];
    groups.set(key, g);
  }
  return groups;
}

/** Growth between two summaries, largest first. */
export function diff(before, after) {
  const out = [];
  for (const [key, g] of after) {
    const o = before.get(key) ?? { count: 0, size: 0 };
    out.push({ key, count: g.count - o.count, size: g.size - o.size });
  }
  return out.sort((x, y) => y.size - x.size);
}

/** V8's own compiled code and its metadata (JIT warm-up, not data the program keeps). */
export const isCompiledCode = (key) => key.startsWith('code ') || key.startsWith('hidden ');

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()) && process.argv[2]) {
  const [a, b, rows = '25'] = process.argv.slice(2);
  for (const d of diff(summarize(a), summarize(b)).slice(0, Number(rows))) {
    console.log(`${String(d.size).padStart(10)} B ${String(d.count).padStart(8)}  ${d.key}`);
  }
}
