-- wrk script: checkouts of one unit, the SKU taken in turn from HOT_SKUS (a
-- comma-separated list), as the customer whose access token is TOKEN. Reports
-- throughput, latency and every error like get.lua; any answer but 201 counts as
-- an error (wrk counts statuses >= 400), so an out-of-stock run shows.
local token = os.getenv("TOKEN")
local skus = {}
for s in string.gmatch(os.getenv("HOT_SKUS") or "", "[^,]+") do skus[#skus + 1] = s end
assert(token and #skus > 0, "set TOKEN and HOT_SKUS")
local bodies = {}
for i, s in ipairs(skus) do
  bodies[i] = '{"items":[{"sku":"' .. s .. '","quantity":1}]}'
end
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", nil, {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }, bodies[(n % #bodies) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format('RESULT {"requests":%d,"seconds":%.3f,"p50_ms":%.3f,"p99_ms":%.3f,"errors":%d,"bad_bodies":0}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
