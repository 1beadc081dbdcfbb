-- wrk script: GET /products/ID, ID drawn from a Zipf law over 1..n with
-- exponent s (1 the hottest): `wrk ... -s zipf.lua URL -- n s`, by default
-- 1000 and 0.99. The CDF is computed once per thread; each request draws a
-- uniform number and finds its ID by binary search. done() prints one JSON
-- line (requests, duration, p50/p99 in µs, errors) for bench/http_load.py.
local n, s, cdf = 1000, 0.99, {}
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  n = tonumber(args[1]) or n
  s = tonumber(args[2]) or s
  local sum = 0
  for k = 1, n do
    sum = sum + 1 / k ^ s
    cdf[k] = sum
  end
  for k = 1, n do
    cdf[k] = cdf[k] / sum
  end
  math.randomseed(os.time() * 16 + id)
end

function request()
  local u, lo, hi = math.random(), 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return wrk.format("GET", "/products/" .. lo)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d, "non_2xx": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
