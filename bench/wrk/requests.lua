-- wrk script for slotmill's benchmarks: requests from a file, latency percentiles as JSON.
--
-- BENCH_REQUESTS names a file of lines "METHOD<TAB>PATH<TAB>BODY" (BODY may be empty).
-- Each thread takes every n-th line from its own offset, so with distinct lines (holds on
-- distinct slots) no two requests of a run repeat until the file is used up; after that
-- a thread starts over (repeats answer 409 and are counted as non-2xx).
-- done() prints one line "BENCH_JSON {...}" with microsecond percentiles.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local path = os.getenv("BENCH_REQUESTS")
   reqs = {}
   for line in io.lines(path) do
      local method, p, body = line:match("^([^\t]*)\t([^\t]*)\t?(.*)$")
      if method then
         local headers = {}
         if body ~= nil and body ~= "" then
            headers["Content-Type"] = "application/json"
         else
            body = nil
         end
         table.insert(reqs, wrk.format(method, p, headers, body))
      end
   end
   if #reqs == 0 then
      error("no requests in " .. tostring(path))
   end
   local stride = tonumber(os.getenv("BENCH_THREADS") or "1")
   index = tid
   step = stride
end

function request()
   local r = reqs[(index % #reqs) + 1]
   index = index + step
   return r
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"non2xx": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, summary.bytes,
      e.status, e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
