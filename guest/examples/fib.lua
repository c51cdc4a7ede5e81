-- fib.lua: CPU-bound example. Prints fib(1..30) computed iteratively, then
-- fib(25) computed by naive recursion (about 250k calls), then "done".
-- Output is fully deterministic.

local function fib_iter(n)
  local a, b = 0, 1
  for _ = 1, n do
    a, b = b, a + b
  end
  return a
end

local function fib_rec(n)
  if n < 2 then
    return n
  end
  return fib_rec(n - 1) + fib_rec(n - 2)
end

for n = 1, 30 do
  print(string.format("fib(%d)=%d", n, fib_iter(n)))
end
print(string.format("fib_rec(25)=%d", fib_rec(25)))
print("done")
