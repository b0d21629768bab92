-- wrk script for ./run.sh soak: each request picks a random URL from the
-- file named by SOAK_URLS (a mix of avatars and of cached and cold sizes).
local paths = {}

function init(args)
  for line in io.lines(os.getenv("SOAK_URLS")) do
    paths[#paths + 1] = line:gsub("^https?://[^/]+", "")
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
