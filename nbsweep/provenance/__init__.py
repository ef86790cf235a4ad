"""What each run was made from, and whether its notebook is current: fingerprints, records, run states."""
