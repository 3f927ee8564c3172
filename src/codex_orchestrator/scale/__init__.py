"""Scale-out: parallel goals, the evaluation harness, the learning library."""
