-- One script for every case: the request comes from the environment, the result leaves as one JSON line.
wrk.method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local token = os.getenv("WRK_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

-- WRK_BUSY_STATUS=503: count those answers apart (each thread in its own Lua state; done() adds them up).
-- Only then is response() defined, as wrk skips parsing responses for a script without one.
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
end
local busy_status = tonumber(os.getenv("WRK_BUSY_STATUS") or "")
if busy_status then
  busy = 0
  response = function(status, headers, body)
    if status == busy_status then
      busy = busy + 1
    end
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local refused = 0
  for _, thread in ipairs(threads) do
    refused = refused + (thread:get("busy") or 0)
  end
  io.write(string.format(
    '\n{"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, '
      .. '"status_errors": %d, "busy": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, refused, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
