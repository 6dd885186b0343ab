# `tests/testhost shell`: an interactive shell in the test host's chroot, for debugging.
echo "test host shell: REPO=$REPO RESULTS=$RESULTS; host-vmm, busybox and the host's tools are on PATH"
exec /bin/busybox setsid -c /bin/busybox sh -i
