-- run by `lessonrun -i repl_script.lua a b` in tests/repl/script.txt
greeting = "hello from the script"
counter = 42
sleep(0.01)
print(("script ran with %d args"):format(select("#", ...)))
