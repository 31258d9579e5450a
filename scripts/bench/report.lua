-- wrk script used by scripts/load.sh.
--
-- Always: at the end, print one machine-readable line
--   RS_RESULT requests=.. duration_us=.. bytes=.. p50_us=.. p99_us=.. connect=.. read=..
--             write=.. timeout=.. status=.. expected=.. unexpected=..
-- ("status" is wrk's own count of responses >= 400).
--
-- When RS_COND is set ("path\tetag\npath\tetag..."), every request is a GET of one of those
-- paths with a matching If-None-Match (cycled, prepared once), and every response status is
-- counted: a 304 is expected, anything else is unexpected. Without RS_COND no response() hook
-- is defined, so wrk does not buffer bodies (large files stay cheap for the client).

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

local cond = os.getenv("RS_COND")
local extra = os.getenv("RS_HEADER") -- optional single "Name: value" header

if cond ~= nil and cond ~= "" then
    local reqs = {}
    local n = 0
    local i = 0

    function init(args)
        expected = 0
        unexpected = 0
        for line in string.gmatch(cond, "[^\n]+") do
            local path, etag = string.match(line, "^([^\t]+)\t(.+)$")
            if path ~= nil then
                local headers = { ["If-None-Match"] = etag }
                if extra ~= nil and extra ~= "" then
                    local k, v = string.match(extra, "^([^:]+):%s*(.*)$")
                    headers[k] = v
                end
                table.insert(reqs, wrk.format("GET", path, headers))
            end
        end
        n = #reqs
    end

    function request()
        i = i % n + 1
        return reqs[i]
    end

    function response(status, headers, body)
        if status == 304 then
            expected = expected + 1
        else
            unexpected = unexpected + 1
        end
    end
end

function done(summary, latency, requests)
    local exp, unexp = 0, 0
    for _, t in ipairs(threads) do
        exp = exp + (tonumber(t:get("expected")) or 0)
        unexp = unexp + (tonumber(t:get("unexpected")) or 0)
    end
    local e = summary.errors
    io.write(string.format(
        "RS_RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d connect=%d read=%d write=%d tmo=%d status=%d expected=%d unexpected=%d\n",
        summary.requests, summary.duration, summary.bytes,
        latency:percentile(50.0), latency:percentile(99.0),
        e.connect, e.read, e.write, e.timeout, e.status, exp, unexp))
end
