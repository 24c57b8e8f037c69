import typer

from capacity.simulation import capacity

if __name__ == "__main__":
    typer.run(capacity)
