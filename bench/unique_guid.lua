-- wrk script for bench/ingest.py: the same signed body each time, a fresh X-GitHub-Delivery GUID per
-- request (PREFIX, the thread, a counter), and a JSON summary line for the Python side to read.
local body = assert(io.open(os.getenv("BODY"), "rb")):read("*a")
local signature = os.getenv("SIGNATURE")
local prefix = os.getenv("PREFIX")
local counter = 0
id = 0  -- a global: setup() sets each thread's own with thread:set

function setup(thread)
  id = id + 1
  thread:set("id", id)
end

function init(args)
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-GitHub-Event"] = "pull_request"
  wrk.headers["X-Hub-Signature-256"] = signature
  wrk.headers["User-Agent"] = "GitHub-Hookshot/bench"
end

function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = prefix .. id .. "-" .. counter
  return wrk.format()
end

function done(summary, latency, requests)
  local ok = summary.requests - summary.errors.status
  io.write(string.format(
    'JSON {"requests": %d, "ok": %d, "non_2xx": %d, "socket_errors": %d, "seconds": %.3f, ' ..
    '"p50_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f}\n',
    summary.requests, ok, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
