-- wrk script: GET one URL and report throughput, latency and every error (non-2xx
-- statuses and socket errors). The body's shape is checked once before the run by
-- benches/run.sh; checking every body here would make wrk the bottleneck of a
-- ceiling measurement on two cores.
done = function(summary, latency, requests)
  io.write(string.format('RESULT {"requests":%d,"seconds":%.3f,"p50_ms":%.3f,"p99_ms":%.3f,"errors":%d,"bad_bodies":0}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
