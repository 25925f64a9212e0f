"""The `instruction_following` `evaluate` module (`evaluate.load` reads `instruction_following.py` in this folder)."""
