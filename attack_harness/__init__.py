"""featurelock.attack_harness."""
