"""The Pulumi program: the Cluster component, its nodes and setup phases, and each cloud's backend.

Installed as `styx.components` (pyproject.toml maps the repo's top-level components/ there). It imports
the model (styx.model) and never the application (styx.app).
"""
