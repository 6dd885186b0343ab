"""The nested-KVM test host harness behind tests/testhost."""
