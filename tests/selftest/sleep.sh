# Harness self-test: sleeps past any short --timeout; the harness must report a timeout.
echo "sleep: sleeping 600 s"
sleep 600
echo "sleep: woke up (the timeout did not work)"
