-- wrk script: the $find-mutual load benchmark of issue 4. One clinic (a random Location of
-- the 2,000), a 14-day window starting on a random weekday of the first six weeks, three
-- participants (Patient/p-0, RelatedPerson/p-1, RelatedPerson/p-2) with 2,000 busy Slots each.
-- The data comes from `calsync generate --participants 3` (Slots from 2027-01-04).

local locations = tonumber(os.getenv("LOCATIONS") or "2000")
local first = os.time({year = 2027, month = 1, day = 4, hour = 12})
local people = "participant=Patient/p-0&participant=RelatedPerson/p-1&participant=RelatedPerson/p-2"

math.randomseed(os.time())

request = function()
  local l = math.random(0, locations - 1)
  local from = first + math.random(0, 6 * 7 - 1) * 86400
  local path = string.format(
    "/Appointment/$find-mutual?start=%s&end=%s&duration=30&%s&location-reference=Location/loc-%d",
    os.date("!%Y-%m-%d", from), os.date("!%Y-%m-%d", from + 13 * 86400), people, l)
  return wrk.format("GET", path)
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d non2xx=%d p50_ms=%.2f p99_ms=%.2f rps=%.0f\n",
    summary.requests, summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6)))
end
