"""The run cache: every good execution kept under its key, restored instead of executed anywhere the same run is planned."""
