"""Entry point for `churn` and `python -m churn`: pins the numerical kernels, then runs the CLI."""

from churn.kernels import pin_kernels


def main() -> None:
    """Run the CLI with the kernels pinned (churn.kernels) before anything imports numpy."""
    pin_kernels()
    from churn.cli import main as cli_main  # after the pin: the CLI's imports load numpy

    cli_main()


if __name__ == "__main__":
    main()
