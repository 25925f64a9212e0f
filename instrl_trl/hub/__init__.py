"""Hub helpers: model and dataset cards rendered from the Jinja templates in `model_cards/`."""

from .cards import framework_versions, render_model_card, template_path


__all__ = ["framework_versions", "render_model_card", "template_path"]
