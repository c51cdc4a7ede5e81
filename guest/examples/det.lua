-- det.lua: prints values that come from the VM's virtual clock and
-- randomness. Natively they change on every run; inside a deterministic
-- nubis VM they must be the same on every run.
--   os.time()   -> time(2)/clock_gettime(CLOCK_REALTIME)
--   os.clock()  -> clock(3), i.e. CLOCK_PROCESS_CPUTIME_ID
--   math.randomseed() with no argument seeds from time(NULL) and the
--   address of the Lua state (a heap address), and returns both seeds.

local t = os.time()
print("time=" .. t)
print("date=" .. os.date("!%Y-%m-%dT%H:%M:%SZ", t))
print(string.format("clock=%.6f", os.clock()))
local s1, s2 = math.randomseed()
print(string.format("seed=%d,%d", s1, s2))
for i = 1, 3 do
  print(string.format("random%d=%.17g", i, math.random()))
end
