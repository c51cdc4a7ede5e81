-- wordcount.lua: reads all of stdin and prints
--   words=<total number of words>
--   <count> <word>        (the 5 most frequent, at most 5 lines)
-- A word is a run of letters, digits, apostrophes or underscores, compared
-- case-insensitively. Ties are broken alphabetically, so the output does
-- not depend on table iteration order (which varies with Lua's hash seed).

local text = io.read("a") or ""

local counts, total = {}, 0
for word in text:gmatch("[%w'_]+") do
  word = word:lower()
  counts[word] = (counts[word] or 0) + 1
  total = total + 1
end

local words = {}
for word in pairs(counts) do
  words[#words + 1] = word
end
table.sort(words, function(a, b)
  if counts[a] ~= counts[b] then
    return counts[a] > counts[b]
  end
  return a < b
end)

print("words=" .. total)
for i = 1, math.min(5, #words) do
  print(counts[words[i]] .. " " .. words[i])
end
