echo "a-pass: fine"
