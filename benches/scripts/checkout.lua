-- wrk script: authenticated checkouts spread over users and SKUs; every response is
-- checked (201 and an order body), and the failures are counted, so a server that
-- answers errors fast cannot look fast.
local tokens, skus = {}, tonumber(os.getenv("BENCH_SKUS") or "50")
for line in io.lines(os.getenv("BENCH_TOKENS") or "tokens.txt") do tokens[#tokens + 1] = line end
local n = 0
bad = 0
request = function()
  n = n + 1
  local body = '{"items":[{"sku":"BENCH-' .. ((n % skus) + 1) .. '","quantity":1}]}'
  return wrk.format("POST", "/api/v1/orders",
    {["Authorization"] = "Bearer " .. tokens[(n % #tokens) + 1], ["Content-Type"] = "application/json"}, body)
end
response = function(status, headers, body)
  if status ~= 201 or not string.find(body, '"total_cents":', 1, true) then bad = bad + 1 end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("bad") or 0) end
  io.write(string.format('RESULT {"requests":%d,"seconds":%.3f,"p50_ms":%.3f,"p99_ms":%.3f,"errors":%d,"bad_bodies":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, bad))
end
