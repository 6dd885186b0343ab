# Harness self-test (nested mode only): the test host powers off before the script ends;
# the harness must say the test host died and exit 125.
[ "$TESTHOST_MODE" = nested ] || { echo "die.sh only makes sense in the test host"; exit 99; }
echo "die: powering the test host off under the script"
busybox poweroff -f
sleep 30
