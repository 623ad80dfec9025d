// The server under benchmark, in a process of its own (started by bench/run.ts over IPC) so that its memory
// is measured apart from the client's. Listens on 127.0.0.1 only. Messages from the parent:
//   {type:'mark'}  — collect garbage, note RSS, start sampling the peak every 5 ms;
//   {type:'read'}  — stop sampling, answer {type:'memory', before, peak, after, heapPeak} (bytes; heapPeak is
//                    the largest V8 heap, to tell garbage not yet collected from memory held).
import type { AddressInfo } from 'node:net';
import { openDatabase } from '../server/db.ts';
import { createApp } from '../server/app.ts';
import { loadConfig } from '../server/config.ts';

const url = process.env.BENCH_DATABASE_URL;
if (!url || !process.send) throw new Error('bench/server.ts is started by bench/run.ts');

const config = { ...loadConfig(), bcryptCost: 4, port: 0, jsonLimit: '64mb' };
const db = await openDatabase(url, config);
const app = await createApp(db, config);
const server = app.listen(0, '127.0.0.1', () => {
  process.send!({ type: 'listening', port: (server.address() as AddressInfo).port });
});

let before = 0;
let peak = 0;
let heapPeak = 0;
let sampler: NodeJS.Timeout | null = null;
let ticks = 0;
const sample = () => {
  peak = Math.max(peak, process.memoryUsage.rss());
  if (ticks++ % 10 === 0) heapPeak = Math.max(heapPeak, process.memoryUsage().heapTotal); // heavier: every 50 ms
};

process.on('message', (message: { type: string }) => {
  if (message.type === 'mark') {
    (globalThis as { gc?: () => void }).gc?.();
    before = process.memoryUsage.rss();
    peak = before;
    heapPeak = process.memoryUsage().heapTotal;
    sampler = setInterval(sample, 5);
    process.send!({ type: 'marked' });
  } else if (message.type === 'read') {
    if (sampler) clearInterval(sampler);
    sample();
    process.send!({ type: 'memory', before, peak, after: process.memoryUsage.rss(), heapPeak });
  } else if (message.type === 'stop') {
    server.closeAllConnections();
    server.close();
    void db.close().finally(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0)); // the parent went away
