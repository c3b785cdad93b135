-- wrk script: POSTs one signed GitHub delivery body with a fresh X-GitHub-Delivery per request,
-- and prints the run's figures as one JSON line.
-- Environment: BODY (path of the body), SIGNATURE (sha256=...), EVENT, RUN (unique per run).
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("BODY"), "rb"))
  body = f:read("*a")
  f:close()
  n = 0
  run = os.getenv("RUN") or "0"
  headers = {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = os.getenv("EVENT") or "pull_request",
    ["X-Hub-Signature-256"] = os.getenv("SIGNATURE"),
    ["User-Agent"] = "GitHub-Hookshot/bench",
  }
end

function request()
  n = n + 1
  headers["X-GitHub-Delivery"] = string.format("%s-%d-%d", run, tid, n)
  return wrk.format("POST", "/webhooks/github", headers, body)
end

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"non2xx":%d,"errors":%d}\n',
    summary.requests, s, summary.requests / s, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
