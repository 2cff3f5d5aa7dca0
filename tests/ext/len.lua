-- Lua extension: the BPF module is the compiled skeleton (ext.o beside this
-- script's working directory); decode() reads its 32-bit length.
api_version = 1
local f = assert(io.open(os.getenv("IPFT_TEST_OBJECT"), "rb"))
program = f:read("a")
f:close()

function init()
  calls = 0
end

function decode(data)
  calls = calls + 1
  local len = string.unpack("<I4", data)
  return { len = len, lua = "yes" }
end

function fini()
  io.stderr:write("lua fini after " .. calls .. " events\n")
end
