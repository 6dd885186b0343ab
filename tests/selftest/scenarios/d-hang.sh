# Hangs: run-all must kill it after $SCENARIO_TIMEOUT and report a timeout.
echo "d-hang: hanging"
sleep 1000
