"""
Hub helpers anyone may import: model and dataset cards rendered from the Jinja templates in `model_cards/`
(`cards.py`), pushing a folder (`push.py`), the one retry policy for Hub and endpoint requests (`retry.py`) and the
plotting set-up for card figures (`plots.py`).
"""

from .cards import framework_versions, render_model_card, template_path


__all__ = ["framework_versions", "render_model_card", "template_path"]
