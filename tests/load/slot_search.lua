-- wrk script: the Slot search of the issue-3 load benchmark, over random Schedules and weeks.
-- GET /Slot?schedule=sched-N&start=geDAY&start=ltDAY+7&status=free&_count=50
-- The data comes from `calsync generate` (2,000 Schedules, Slots on weekdays from 2027-01-04).

local schedules = tonumber(os.getenv("SCHEDULES") or "2000")
local weeks = tonumber(os.getenv("WEEKS") or "10")
local first = os.time({year = 2027, month = 1, day = 4, hour = 12})

math.randomseed(os.time())

request = function()
  local s = math.random(0, schedules - 1)
  local from = first + math.random(0, weeks * 7 - 1) * 86400
  local path = string.format(
    "/Slot?schedule=sched-%d&start=ge%s&start=lt%s&status=free&_count=50",
    s, os.date("!%Y-%m-%d", from), os.date("!%Y-%m-%d", from + 7 * 86400))
  return wrk.format("GET", path)
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d non2xx=%d p50_ms=%.2f p99_ms=%.2f rps=%.0f\n",
    summary.requests, summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6)))
end
