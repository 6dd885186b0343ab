# Passes, but leaves a process behind: run-all must report and kill it.
sleep 1000 &
echo "c-leftover: left sleep $! behind"
