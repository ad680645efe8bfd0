"""The CI size-budget gate: configuration, rules, evaluation and its outputs."""
