import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemFs } from '../backends/memfs.js';
import { FaultFs } from '../backends/fault.js';
import { Engine } from '../src/engine.js';
import { LogBatch } from '../src/log-batch.js';
import { Histogram } from '../src/metrics.js';
import { registerPrometheus } from '../src/prometheus.js';

async function writeSome(engine: Engine, count: number): Promise<void> {
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const batch = new LogBatch();
      batch.addEntries(i + 1, [{ index: 1, term: 1, data: new Uint8Array(100) }]);
      await engine.write(batch, { sync: true });
    }),
  );
}

describe('metrics', () => {
  it('histograms bucket samples and answer quantiles by bucket bound', () => {
    const histogram = new Histogram([10, 100, 1000]);
    for (const v of [1, 5, 50, 500, 5000]) histogram.observe(v);
    const snap = histogram.snapshot();
    assert.deepEqual(snap.counts, [2, 1, 1, 1]);
    assert.equal(snap.count, 5);
    assert.equal(snap.sum, 5556);
    assert.equal(histogram.quantile(0.4), 10);
    assert.equal(histogram.quantile(0.6), 100);
    assert.equal(histogram.quantile(1), Number.POSITIVE_INFINITY);
  });

  it('the engine counts writes, groups, barriers and errors', async () => {
    const fault = new FaultFs(new MemFs(), { seed: 1 });
    const engine = new Engine({ fs: fault });
    await engine.open();
    await writeSome(engine, 20);
    let metrics = engine.metrics();
    assert.equal(metrics.counters.writes, 20);
    assert.equal(metrics.histograms.writeLatencyMicros.count, 20);
    assert.equal(metrics.histograms.groupSize.count, metrics.counters.groups);
    assert.ok(metrics.counters.groups < 20, 'concurrent writes were grouped');
    assert.equal(metrics.histograms.syncLatencyMicros.count, metrics.counters.syncs);
    assert.equal(metrics.gauges.entries, 20);
    fault.inject({ ops: ['sync'], when: { script: 'fail' }, error: 'EIO' });
    await assert.rejects(writeSome(engine, 1));
    metrics = engine.metrics();
    assert.equal(metrics.counters.writeErrors, 1);
    assert.equal(metrics.gauges.failed, 1);
    await engine.close();
  });

  it('exports to prom-client in the Prometheus text format', async () => {
    const engine = new Engine({ fs: new MemFs() });
    await engine.open();
    await writeSome(engine, 5);
    const { registry, unregister } = await registerPrometheus(engine);
    const text = await registry.metrics();
    assert.match(text, /^# TYPE raftlog_writes_total counter$/m);
    assert.match(text, /^raftlog_writes_total\{engine="default"\} 5$/m);
    assert.match(text, /^raftlog_entries\{engine="default"\} 5$/m);
    assert.match(text, /^# TYPE raftlog_write_latency_seconds histogram$/m);
    assert.match(text, /^raftlog_write_latency_seconds_bucket\{engine="default",le="\+Inf"\} 5$/m);
    assert.match(text, /^raftlog_write_latency_seconds_count\{engine="default"\} 5$/m);
    assert.match(text, /^raftlog_group_size_bucket\{engine="default",le="64"\} \d+$/m);
    await writeSome(engine, 2);
    assert.match(await registry.metrics(), /^raftlog_writes_total\{engine="default"\} 7$/m, 'every scrape reads a fresh snapshot');
    unregister();
    assert.doesNotMatch(await registry.metrics(), /raftlog_writes_total/);
    await engine.close();
  });

  it('prints latency bucket bounds as exact decimals (le="0.000025", not 0.000024999999999999998)', async () => {
    const engine = new Engine({ fs: new MemFs() });
    await engine.open();
    const { registry, unregister } = await registerPrometheus(engine);
    const les = [...(await registry.metrics()).matchAll(/^raftlog_write_latency_seconds_bucket\{engine="default",le="([^"]+)"\}/gm)].map(
      (m) => m[1],
    );
    assert.deepEqual(les, [
      '0.000025',
      '0.00005',
      '0.0001',
      '0.00025',
      '0.0005',
      '0.001',
      '0.0025',
      '0.005',
      '0.01',
      '0.025',
      '0.05',
      '0.1',
      '0.25',
      '1',
      '+Inf',
    ]);
    unregister();
    await engine.close();
  });

  it('several engines share one registry, told apart by the engine label', async () => {
    const client = await import('prom-client');
    const registry = new client.Registry();
    const first = new Engine({ fs: new MemFs() });
    const second = new Engine({ fs: new MemFs() });
    await first.open();
    await second.open();
    await writeSome(first, 3);
    await writeSome(second, 4);
    const a = await registerPrometheus(first, { registry, engine: 'raft-a' });
    const b = await registerPrometheus(second, { registry, engine: 'raft-b' });
    await assert.rejects(registerPrometheus(second, { registry, engine: 'raft-a' }), { code: 'INVALID_ARGUMENT' });
    let text = await registry.metrics();
    assert.match(text, /^raftlog_writes_total\{engine="raft-a"\} 3$/m);
    assert.match(text, /^raftlog_writes_total\{engine="raft-b"\} 4$/m);
    assert.equal(text.match(/^# TYPE raftlog_writes_total counter$/gm)?.length, 1, 'one metric, two series');
    a.unregister();
    text = await registry.metrics();
    assert.doesNotMatch(text, /engine="raft-a"/);
    assert.match(text, /^raftlog_writes_total\{engine="raft-b"\} 4$/m);
    b.unregister();
    assert.doesNotMatch(await registry.metrics(), /raftlog_writes_total/);
    await first.close();
    await second.close();
  });
});
