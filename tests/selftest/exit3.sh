# Harness self-test: the harness must exit with the script's status (3).
echo "exit3: about to exit 3"
exit 3
