"""styx's security invariants as Pulumi policies (AWS and GCP); see policies.py."""
