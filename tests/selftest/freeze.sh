# Harness self-test (nested mode only): the test host goes silent (every process but init
# stopped, the heartbeat included), as a frozen QEMU would; the harness must say it froze,
# keep QEMU's state (frozen.txt) and exit 125 long before the run's timeout.
[ "$TESTHOST_MODE" = nested ] || { echo "freeze.sh only makes sense in the test host"; exit 99; }
echo "freeze: stopping every process"
busybox kill -STOP -1
busybox kill -STOP $$
echo "freeze: still running"
exit 3
