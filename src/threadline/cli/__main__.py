"""``python -m threadline.cli``: the same as the ``threadline`` command."""

from threadline.cli import entrypoint

if __name__ == "__main__":
    entrypoint()
