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
    assert.match(text, /^raftlog_writes_total 5$/m);
    assert.match(text, /^raftlog_entries 5$/m);
    assert.match(text, /^# TYPE raftlog_write_latency_seconds histogram$/m);
    assert.match(text, /^raftlog_write_latency_seconds_bucket\{le="\+Inf"\} 5$/m);
    assert.match(text, /^raftlog_write_latency_seconds_count 5$/m);
    assert.match(text, /^raftlog_group_size_bucket\{le="64"\} \d+$/m);
    await writeSome(engine, 2);
    assert.match(await registry.metrics(), /^raftlog_writes_total 7$/m, 'every scrape reads a fresh snapshot');
    unregister();
    assert.doesNotMatch(await registry.metrics(), /raftlog_writes_total/);
    await engine.close();
  });
});
