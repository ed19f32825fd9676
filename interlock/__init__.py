"""The composition root: wires the orchestrator, mock services and dashboard together."""
