"""The GPU agent (``simpletuner worker``): runs training jobs handed out through Temporal.

See PROTOCOL.md for the contract with the control plane; ``gpu_agent.cli.main`` is the entry point.
"""

__version__ = "0.1.0"
