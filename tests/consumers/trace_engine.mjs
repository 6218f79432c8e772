// Reads a Chrome trace with the trace engine of Chrome DevTools' Performance
// panel (@paulirish/trace_engine) and prints what it made of it as JSON:
// per thread its name and the complete events it holds, and every warning
// or error the engine printed (it reports unbalanced events that way).
//
// usage: node trace_engine.mjs NODE_MODULES TRACE.json
import path from 'node:path';
import {pathToFileURL} from 'node:url';

const [modules, trace] = process.argv.slice(2);
const complaints = [];
for (const level of ['warn', 'error']) {
  console[level] = (...args) => complaints.push(args.map(String).join(' '));
}
const engine = path.join(modules, '@paulirish/trace_engine/analyze-trace.mjs');
const {analyzeTrace} = await import(pathToFileURL(engine).href);
const {parsedTrace} = await analyzeTrace(trace);
const threads = [];
for (const [pid, proc] of parsedTrace.data.Renderer.processes) {
  for (const [tid, t] of proc.threads) {
    threads.push({
      pid, tid, name: t.name ?? null,
      entries: t.entries.map(e => [e.name, e.ts, e.dur ?? 0]),
    });
  }
}
process.stdout.write(JSON.stringify({threads, complaints}) + '\n');
