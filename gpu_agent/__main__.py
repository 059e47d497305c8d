"""``python -m gpu_agent``: run the agent CLI."""

from gpu_agent.cli import run

if __name__ == "__main__":
    run()
