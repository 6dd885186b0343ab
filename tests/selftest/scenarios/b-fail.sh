echo "b-fail: failing with 7"
exit 7
