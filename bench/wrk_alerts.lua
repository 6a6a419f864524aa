-- wrk script: one Alertmanager v4 alert per POST, each with a new fingerprint, over the bench's pool of
-- services (pool-<run>-0 .. pool-<run>-<size-1>, the incidents the Python phase opened), so wrk measures
-- the same intake as bench/intake.py's "receiver (HTTP)" phase with a load generator that costs little CPU.
--
--   wrk -t2 -c32 -d20s --latency -s bench/wrk_alerts.lua http://127.0.0.1:PORT/api/v1/alerts/alertmanager -- RUN SIZE
--
-- The last line printed is "BENCH-WRK key=value ..." with exact counts for bench/wrk.py to parse.

local run, size = "wrk", 100
local thread_id, counter = 0, 0
local threads = 0

-- Runs in the main Lua state once per thread: number them so fingerprints never collide across threads.
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

function init(args)
  run = args[1] or run
  size = tonumber(args[2]) or size
  wrk.headers["Content-Type"] = "application/json"
end

local template = '{"version":"4","groupKey":"{}:{alertname=\\"BenchAlert\\"}","truncatedAlerts":0,'
  .. '"status":"firing","receiver":"tocsin","groupLabels":{"alertname":"BenchAlert"},'
  .. '"commonLabels":{"alertname":"BenchAlert"},"commonAnnotations":{},'
  .. '"externalURL":"http://alertmanager.invalid","alerts":[{"status":"firing",'
  .. '"labels":{"alertname":"BenchAlert","service":"%s","environment":"bench","severity":"warning"},'
  .. '"annotations":{"summary":"bench alert on %s"},"startsAt":"%s","endsAt":"0001-01-01T00:00:00Z",'
  .. '"generatorURL":"","fingerprint":"%s"}]}'

function request()
  counter = counter + 1
  local service = string.format("pool-%s-%d", run, counter % size)
  local fingerprint = string.format("%s-wrk-%d-%d", service, thread_id, counter)
  local body = string.format(template, service, service, os.date("!%Y-%m-%dT%H:%M:%SZ"), fingerprint)
  return wrk.format("POST", nil, nil, body)
end

-- summary.errors.status counts answers outside 2xx/3xx; latencies are in microseconds.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH-WRK requests=%d duration_us=%d status=%d connect=%d read=%d write=%d timeout=%d "
      .. "p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
